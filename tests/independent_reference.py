"""MOSS-Audio in plain NumPy, written from upstream's semantics, sharing no code with export/.

Used to check the PyTorch reference (and so everything measured against it): mel from
transformers' WhisperFeatureExtractor, the chunked encoder with upstream's batch padding,
DeepStack taps through out_proj and mergers, Qwen3 (q/k RMSNorm, GQA, NEOX RoPE) with taps
added after layers 0..k-1 at audio positions, greedy decoding by full recomputation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def conv3x3_s2(x, w, b):
    """x [B, Cin, H, W] -> [B, Cout, ceil(H/2), ceil(W/2)], zero padding 1."""
    bsz, cin, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = (h - 1) // 2 + 1, (wd - 1) // 2 + 1
    out = np.zeros((bsz, w.shape[0], ho, wo))
    for dy in range(3):
        for dx in range(3):
            patch = xp[:, :, dy : dy + 2 * ho : 2, dx : dx + 2 * wo : 2]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, dy, dx])
    return out + b[None, :, None, None]


class IndependentMossAudio:
    def __init__(self, folder: Path):
        from safetensors.numpy import load_file

        self.cfg = json.loads((folder / "config.json").read_text())
        self.w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
        self.proc = json.loads((folder / "processor_config.json").read_text())
        self.eos = set(json.loads((folder / "generation_config.json").read_text())["eos_token_id"])
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        a = self.cfg["audio_config"]
        k = len(a["deepstack_encoder_layer_indexes"])
        if self.cfg.get("deepstack_num_inject_layers") is not None:
            k = min(k, self.cfg["deepstack_num_inject_layers"])
        self.taps = a["deepstack_encoder_layer_indexes"][:k]

    def lin(self, name, x):
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if name + ".bias" in self.w else y

    def gated(self, name, x):
        return self.lin(name + ".down_proj", silu(self.lin(name + ".gate_proj", x)) * self.lin(name + ".up_proj", x))

    # ---- audio --------------------------------------------------------------------------
    def mel(self, samples):
        """Upstream's processor: Whisper's features, cast to bfloat16 (MelConfig.mel_dtype)."""
        import torch
        from transformers import WhisperFeatureExtractor

        fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400)
        mel = fe._np_extract_fbank_features(samples[None].astype(np.float32), device="cpu")[0]
        return torch.from_numpy(np.ascontiguousarray(mel)).to(torch.bfloat16).double().numpy()

    def encoder(self, mel):
        """Returns (top [N, out], taps list of [N, out])."""
        a = self.cfg["audio_config"]
        size = 2 * a["n_window"]
        lens = [min(size, mel.shape[1] - s) for s in range(0, mel.shape[1], size)]
        width = max(lens)
        batch = np.zeros((len(lens), 1, mel.shape[0], width))
        for i, n in enumerate(lens):
            batch[i, 0, :, :n] = mel[:, i * size : i * size + n]
        x = batch
        for c in ("conv1", "conv2", "conv3"):
            x = gelu(conv3x3_s2(x, self.w[f"audio_encoder.{c}.weight"], self.w[f"audio_encoder.{c}.bias"]))
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], x.shape[3], -1)  # [B, T, C*F]
        x = self.lin("audio_encoder.stem_proj", x)
        d = a["d_model"]
        inv = np.exp(-math.log(10000.0) / (d // 2 - 1) * np.arange(d // 2))
        t = np.arange(x.shape[1])[:, None] * inv[None]
        x = x + np.concatenate([np.sin(t), np.cos(t)], 1)
        valid = np.array([(((n - 1) // 2 + 1 - 1) // 2 + 1 - 1) // 2 + 1 for n in lens])
        bias = np.where(np.arange(x.shape[1])[None] < valid[:, None], 0.0, -np.inf)[:, None, None, :]
        heads = a["encoder_attention_heads"]
        hd = d // heads
        taps = []
        for i in range(a["encoder_layers"]):
            p = f"audio_encoder.layers.{i}."
            h = layer_norm(x, self.w[p + "self_attn_layer_norm.weight"], self.w[p + "self_attn_layer_norm.bias"],
                           a["layer_norm_eps"])
            q, k, v = (self.lin(p + f"self_attn.{n}_proj", h).reshape(h.shape[0], h.shape[1], heads, hd)
                       .transpose(0, 2, 1, 3) for n in "qkv")
            att = softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias) @ v
            x = x + self.lin(p + "self_attn.out_proj", att.transpose(0, 2, 1, 3).reshape(x.shape))
            h = layer_norm(x, self.w[p + "final_layer_norm.weight"], self.w[p + "final_layer_norm.bias"],
                           a["layer_norm_eps"])
            x = x + self.lin(p + "fc2", gelu(self.lin(p + "fc1", h)))
            if i in self.taps:
                taps.append(x)
        x = layer_norm(x, self.w["audio_encoder.layer_norm.weight"], self.w["audio_encoder.layer_norm.bias"],
                       a["layer_norm_eps"])
        out_proj = (lambda y: self.lin("audio_encoder.out_proj", y)) if "audio_encoder.out_proj.weight" in self.w \
            else (lambda y: y)

        def keep(y):
            return np.concatenate([y[i, : valid[i]] for i in range(len(lens))])

        return keep(out_proj(x)), [keep(out_proj(t)) for t in taps]

    def rows(self, samples):
        top, taps = self.encoder(self.mel(samples))
        return np.concatenate([self.gated("audio_adapter", top)]
                              + [self.gated(f"deepstack_audio_merger_list.{k}", t) for k, t in enumerate(taps)], 1)

    # ---- prompt (upstream's processor loop) ----------------------------------------------
    def prompt_ids(self, n_tokens, question):
        audio = self.proc["audio_token_id"]
        digits = {str(d): self.tok.encode(str(d), add_special_tokens=False).ids[0] for d in range(10)}
        span, consumed = [], 0
        for second in range(2, int(n_tokens / 12.5) + 1, 2):
            pos = (second // 2) * 25
            span += [audio] * (pos - consumed)
            consumed = pos
            span += [digits[c] for c in str(second)]
        span += [audio] * (n_tokens - consumed)
        enc = lambda s: self.tok.encode(s, add_special_tokens=False).ids
        return (enc("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
                + [self.proc["audio_start_id"]] + span + [self.proc["audio_end_id"]]
                + enc(f"\n{question}<|im_end|>\n<|im_start|>assistant\n"))

    # ---- decoder ------------------------------------------------------------------------
    def logits(self, ids, rows):
        c = self.cfg["language_config"]
        hidden, nh, nkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        eps = c.get("rms_norm_eps", 1e-6)
        ids = np.asarray(ids)
        audio_pos = np.flatnonzero(ids == self.proc["audio_token_id"])
        x = self.w["language_model.embed_tokens.weight"][ids].copy()
        x[audio_pos] = rows[:, :hidden]
        n = len(ids)
        inv = 1.0 / c["rope_theta"] ** (np.arange(0, hd, 2) / hd)
        ang = np.arange(n)[:, None] * inv[None]
        cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

        def rope(t):  # t [heads, n, hd], rotate_half (NEOX)
            half = np.concatenate([-t[..., hd // 2 :], t[..., : hd // 2]], -1)
            return t * cos + half * sin

        causal = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(c["num_hidden_layers"]):
            p = f"language_model.layers.{i}."
            h = rms_norm(x, self.w[p + "input_layernorm.weight"], eps)
            q = rms_norm(self.lin(p + "self_attn.q_proj", h).reshape(n, nh, hd), self.w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(self.lin(p + "self_attn.k_proj", h).reshape(n, nkv, hd), self.w[p + "self_attn.k_norm.weight"], eps)
            v = self.lin(p + "self_attn.v_proj", h).reshape(n, nkv, hd)
            q, k, v = rope(q.transpose(1, 0, 2)), rope(k.transpose(1, 0, 2)), v.transpose(1, 0, 2)
            k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
            att = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(hd) + causal) @ v
            x = x + self.lin(p + "self_attn.o_proj", att.transpose(1, 0, 2).reshape(n, nh * hd))
            h = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], eps)
            x = x + self.lin(p + "mlp.down_proj", silu(self.lin(p + "mlp.gate_proj", h)) * self.lin(p + "mlp.up_proj", h))
            if i < len(self.taps):
                x[audio_pos] += rows[:, hidden * (i + 1) : hidden * (i + 2)]
        return rms_norm(x, self.w["language_model.norm.weight"], eps) @ self.w["lm_head.weight"].T

    def greedy(self, ids, rows, n_new):
        ids, out = list(ids), []
        for _ in range(n_new):
            token = int(np.argmax(self.logits(ids, rows)[-1]))
            out.append(token)
            if token in self.eos:
                break
            ids.append(token)
        return out
