"""The PyTorch reference: the truth every exported or quantized part is measured against.

It follows upstream: transformers' WhisperFeatureExtractor for the mel (over the clip, or per
zero-padded window for a windowed family), the chunked encoder, and transformers' Qwen3 with
DeepStack taps added to the outputs of LLM layers 0..k-1 at audio positions (none for
MOSS-Transcribe-Diarize, whose head is tied). FP32 on CPU; FP16/BF16 on a GPU.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from export.checkpoint import Checkpoint
from export.config import TextConfig
from export.modeling import load_streaming, load_tower
from runtime.audio import AudioInput, load_audio, require_frames
from runtime.chunks import clip_tokens, window_tokens
from runtime.prompt import Prompt, build_prompt
from runtime.sampling import GenerationOptions, Sampler


def qwen3_config(t: TextConfig):
    """transformers' Qwen3Config for the checkpoint's text config (untied head, SDPA attention)."""
    from transformers import Qwen3Config

    qwen = Qwen3Config(
        vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads, head_dim=t.head_dim, rms_norm_eps=t.rms_norm_eps,
        rope_theta=t.rope_theta, max_position_embeddings=t.max_position_embeddings,
        tie_word_embeddings=False, attention_bias=False,
    )
    qwen._attn_implementation = "sdpa"
    return qwen


@contextmanager
def layer_outputs_changed(layers, changes: list[Callable[[torch.Tensor], torch.Tensor]]) -> Iterator[None]:
    """While inside, layer k's hidden-state output goes through changes[k] (DeepStack injection)."""

    def hook_for(change):
        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                return (change(output[0]),) + tuple(output[1:])
            return change(output)

        return hook

    handles = [layers[k].register_forward_hook(hook_for(c)) for k, c in enumerate(changes)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class MossAudioReference(torch.nn.Module):
    def __init__(self, ckpt: Checkpoint, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        super().__init__()
        from transformers import Qwen3Model

        cfg = ckpt.config
        self.ckpt, self.config = ckpt, cfg
        with _default_dtype(dtype):  # built in the target dtype: an FP32 detour would need 4 bytes/param
            self.tower = load_tower(ckpt)
            t = cfg.text
            self.language_model = Qwen3Model(qwen3_config(t))
            self.lm_head = torch.nn.Linear(t.hidden_size, t.vocab_size, bias=False)
        load_streaming(self.language_model, ckpt, cfg.lm_prefix)
        with torch.no_grad():
            self.lm_head.weight.copy_(ckpt.tensor(cfg.lm_head or cfg.lm_prefix + "embed_tokens.weight"))
        self.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype

    # --- audio -----------------------------------------------------------------------------
    def _feature_extractor(self):
        from transformers import WhisperFeatureExtractor

        a = self.ckpt.audio_info
        return WhisperFeatureExtractor(feature_size=a.n_mels, sampling_rate=a.sample_rate, hop_length=a.hop_length,
                                       n_fft=a.n_fft, chunk_length=a.window_samples // a.sample_rate or 30)

    def mel(self, samples: np.ndarray) -> np.ndarray:
        """Upstream's feature extractor: [n_mels, N//hop], rounded to bfloat16 as its processor does."""
        a = self.ckpt.audio_info
        mel = self._feature_extractor()._np_extract_fbank_features(samples[None].astype(np.float32), device="cpu")[0]
        if a.mel_dtype == "bfloat16":
            mel = torch.from_numpy(np.ascontiguousarray(mel)).to(torch.bfloat16).float().numpy()
        return mel

    @torch.no_grad()
    def audio_rows(self, samples: np.ndarray) -> torch.Tensor:
        """Packed rows [N, hidden * (1 + k)] for one clip, in float32."""
        a = self.ckpt.audio_info
        if a.window_samples:
            return self._window_rows(samples)
        mel = torch.from_numpy(self.mel(samples)).to(self.device, self.dtype)
        return self.tower(mel).float()

    def _window_rows(self, samples: np.ndarray) -> torch.Tensor:
        """Upstream's processor: windows zero-padded to the window before the feature extractor (its
        torch path), the encoder per window, each window's first (n - 1) // samples_per_token + 1 rows."""
        a = self.ckpt.audio_info
        windows = window_tokens(samples.size, a)
        clips = [samples[i * a.window_samples : i * a.window_samples + n] for i, (n, _) in enumerate(windows)]
        mel = self._feature_extractor()(clips, sampling_rate=a.sample_rate, padding="max_length",
                                        return_tensors="pt")["input_features"]
        rows = self.tower(mel.to(self.device, self.dtype)).float()
        return torch.cat([rows[i, :keep] for i, (_, keep) in enumerate(windows)])

    def prompt(self, token_counts: Sequence[int], question: str) -> Prompt:
        return build_prompt(self.ckpt.tokenize, self.ckpt.token_ids, token_counts, question, self.ckpt.prompt_info,
                            self.ckpt.markers)

    def samples(self, audio: AudioInput) -> np.ndarray:
        a = self.ckpt.audio_info
        return require_frames(load_audio(audio, a.sample_rate), a.hop_length, a.sample_rate)

    def prepare(self, audio: Sequence[AudioInput], question: str) -> tuple[Prompt, torch.Tensor]:
        clips = [self.samples(a) for a in audio]
        rows = [self.audio_rows(c) for c in clips]
        a = self.ckpt.audio_info
        counts = [clip_tokens(c.size, a) for c in clips]
        if [r.shape[0] for r in rows] != counts:
            raise RuntimeError(f"encoder gave {[r.shape[0] for r in rows]} rows, the prompt expects {counts}")
        return self.prompt(counts, question), torch.cat(rows)

    # --- decoder ---------------------------------------------------------------------------
    def _deepstack(self, positions: torch.Tensor, taps: list[torch.Tensor]):
        """Add tap k to the output of LLM layer k at the audio positions (upstream's hooks)."""

        def add(tap: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
            def to(hs: torch.Tensor) -> torch.Tensor:
                hs = hs.clone()
                hs[0, positions] = hs[0, positions] + tap.to(hs.dtype)
                return hs

            return to

        return layer_outputs_changed(self.language_model.layers, [add(t) for t in taps])

    def _embed(self, prompt: Prompt, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        h = self.config.text.hidden_size
        ids = torch.as_tensor(prompt.ids, device=self.device)
        embeds = self.language_model.embed_tokens(ids).clone()
        positions = torch.nonzero(torch.as_tensor(prompt.audio_rows >= 0, device=self.device)).flatten()
        order = torch.as_tensor(prompt.audio_rows[prompt.audio_rows >= 0], device=self.device)
        rows = rows.to(self.device, self.dtype)[order]
        embeds[positions] = rows[:, :h]
        taps = [rows[:, h * (k + 1) : h * (k + 2)] for k in range(self.config.n_deepstack)]
        return embeds[None], positions, taps

    @torch.no_grad()
    def logits(self, prompt: Prompt, rows: torch.Tensor, continuation: Sequence[int] = ()) -> torch.Tensor:
        """Next-token logits [len(prompt) + len(continuation), vocab] in one teacher-forced pass."""
        embeds, positions, taps = self._embed(prompt, rows)
        if continuation:
            extra = self.language_model.embed_tokens(torch.as_tensor(list(continuation), device=self.device))
            embeds = torch.cat([embeds, extra[None]], dim=1)
        with self._deepstack(positions, taps):
            hidden = self.language_model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        return self.lm_head(hidden[0]).float()

    @torch.no_grad()
    def generate(self, prompt: Prompt, rows: torch.Tensor, options: GenerationOptions,
                 on_token=None) -> list[int]:
        """Greedy or sampled ids; `on_token(id)` is called as each arrives (for timing)."""
        eos = set(self.ckpt.token_ids.eos)
        sampler = Sampler(options)
        embeds, positions, taps = self._embed(prompt, rows)
        cache_name = _cache_name(self.language_model)
        with self._deepstack(positions, taps):
            out = self.language_model(inputs_embeds=embeds, use_cache=True)
        cache, produced = out[cache_name], []
        hidden = out.last_hidden_state[0, -1]
        for _ in range(options.max_new_tokens):
            logits = self.lm_head(hidden).float().cpu().numpy()
            token = sampler(logits, prompt.ids.tolist() + produced)
            produced.append(token)
            if on_token:
                on_token(token)
            if token in eos:
                break
            out = self.language_model(input_ids=torch.tensor([[token]], device=self.device),
                                      use_cache=True, **{cache_name: cache})
            cache, hidden = out[cache_name], out.last_hidden_state[0, -1]
        return produced


def _cache_name(model: torch.nn.Module) -> str:
    """transformers 5 names the KV cache `cache` (its old name `past_key_values` warns, and goes in
    5.40); 4.x knows only `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
