"""The model being trained: export's AudioTower + transformers' Qwen3 + lm_head, batched.

It is the same module tree `export.reference.MossAudioReference` builds (same classes, same
weight names), so its state dict is the checkpoint. Training-only extras: a CTC head on the
adapter output (dropped when the checkpoint is written) and batched DeepStack injection
through forward hooks on LLM layers 0..k-1, exactly where the reference adds the taps.

The CTC head predicts characters, `ctc_upsample` per audio token: audio tokens come at
12.5 Hz and espeak speaks ~15 characters a second, so character CTC needs more than one
output per token. Measured here, character CTC leaves its plateau within a few hundred
steps where CTC over the 1k BPE vocabulary had not after 1200.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.config import ModelConfig
from export.modeling import AudioTower, _downsampled
from export.reference import layer_outputs_changed, qwen3_config
from runtime.chunks import chunk_lengths
from train.align import Anchors, ctc_first_frames
from train.features import FRONT_END
from train.guide import attention_taps, guide_loss
from train.score import MAX_ANSWER_TOKENS
from train.timeprobe import CLASSES, layer_input, time_probe_loss

IGNORE = -100


@dataclass
class Batch:
    """One padded batch. `mels` are per clip [n_mels, T]; the token tensors are [B, L]."""

    mels: list[torch.Tensor]
    ids: torch.Tensor  # prompt + answer + <|im_end|>, right-padded
    audio_rows: torch.Tensor  # row index into the clip's audio rows, -1 for token embeddings
    labels: torch.Tensor  # next-token targets (IGNORE outside the answer)
    ctc_targets: list[torch.Tensor]  # transcript character ids per clip (empty: no CTC for it)
    anchors: list[Anchors]  # per clip: where each answer token is in the audio (train/align.py)


class TrainableMossAudio(nn.Module):
    def __init__(self, config: ModelConfig, ctc_chars: int, ctc_upsample: int = 3,
                 guide_layers: tuple[int, ...] = (), guide_width: float = 3.0, time_layer: int | None = None):
        super().__init__()
        from transformers import Qwen3Model

        self.config = config
        self.tower = AudioTower(config)
        self.language_model = Qwen3Model(qwen3_config(config.text))
        self.lm_head = nn.Linear(config.text.hidden_size, config.text.vocab_size, bias=False)
        self.ctc_blank, self.ctc_upsample = ctc_chars, ctc_upsample  # the last class is the blank
        self.ctc_head = nn.Linear(config.text.hidden_size, ctc_upsample * (ctc_chars + 1))
        self.guide_layers, self.guide_width = tuple(guide_layers), guide_width  # train/guide.py
        if any(not 0 <= i < config.text.num_hidden_layers for i in self.guide_layers):
            raise ValueError(f"guide_layers {self.guide_layers}: the decoder has layers 0..{config.text.num_hidden_layers - 1}")
        self._init_stem()
        # train/timeprobe.py; made after the stem's init so that without it every weight starts as before
        self.time_layer = time_layer
        self.time_head = None
        if time_layer is not None:
            if not 0 < time_layer < config.text.num_hidden_layers:
                raise ValueError(f"time_layer {time_layer}: it probes the input of a decoder layer above the first, "
                                 f"1..{config.text.num_hidden_layers - 1}")
            self.time_head = nn.Linear(config.text.hidden_size, sum(CLASSES))

    def _init_stem(self) -> None:
        """Variance-preserving conv stem: with PyTorch's default init the stem's output is ~40x
        smaller than the sinusoidal positions added to it, and the audio barely shows."""
        enc = self.tower.audio_encoder
        for conv in (enc.conv1, enc.conv2, enc.conv3):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(enc.stem_proj.weight, std=1 / math.sqrt(enc.stem_proj.in_features))

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Weights under the checkpoint's names (no CTC head)."""
        out = {}
        for name, t in self.state_dict().items():
            if name.startswith("tower."):
                out[name[len("tower."):]] = t
            elif name.startswith(("language_model.", "lm_head.")):
                out[name] = t
        return out

    # --- audio ---------------------------------------------------------------------------
    def audio_rows(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Packed rows per clip, computed for all chunks of all clips in one encoder batch.

        Per chunk the conv stem sees what the runtime's encoder sees: a lone chunk unpadded
        (narrowed with stem_frames), the chunks of a longer clip padded to 400 frames.
        """
        pieces, frames, stem, owner = [], [], [], []
        chunk = self.config.audio.chunk_frames
        for i, mel in enumerate(mels):
            lengths = chunk_lengths(mel.shape[-1], chunk)
            for j, n in enumerate(lengths):
                pieces.append(mel[:, j * chunk : j * chunk + n])
                frames.append(n)
                stem.append(n if len(lengths) == 1 else chunk)
                owner.append(i)
        width = max(max(stem), max(frames))
        batch = mels[0].new_zeros((len(pieces), mels[0].shape[0], width))
        for k, p in enumerate(pieces):
            batch[k, :, : p.shape[-1]] = p
        frames_t = torch.tensor(frames)
        top, taps = self.tower.audio_encoder.encode_chunks(batch, frames_t, torch.tensor(stem))
        keep = torch.arange(top.shape[1])[None, :] < _downsampled(frames_t)[:, None]
        packed = self.tower.pack(top[keep], [t[keep] for t in taps])
        counts = _downsampled(frames_t).tolist()
        per_clip: list[list[torch.Tensor]] = [[] for _ in mels]
        for k, part in enumerate(packed.split(counts)):
            per_clip[owner[k]].append(part)
        return [torch.cat(p) for p in per_clip]

    # --- decoder -------------------------------------------------------------------------
    def _deepstack(self, additions: list[torch.Tensor]):
        """Add dense [B, L, h] tap tensors (zero off the audio positions) to layer k's output."""
        return layer_outputs_changed(self.language_model.layers, [lambda hs, a=a: hs + a for a in additions])

    def _hidden(self, ids: torch.Tensor, audio_rows: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
        """Decoder output [B, L, h]: token embeddings, audio rows spliced in where audio_rows >= 0,
        their DeepStack parts added to the first layers' outputs."""
        h = self.config.text.hidden_size
        embeds = self.language_model.embed_tokens(ids)
        mask = audio_rows >= 0
        b_idx, p_idx = torch.nonzero(mask, as_tuple=True)
        gathered = torch.cat([rows[b][audio_rows[b][mask[b]]] for b in range(len(rows))]).to(embeds.dtype)
        embeds = embeds.index_put((b_idx, p_idx), gathered[:, :h])
        additions = []
        for k in range(self.config.n_deepstack):
            dense = embeds.new_zeros(embeds.shape)
            additions.append(dense.index_put((b_idx, p_idx), gathered[:, h * (k + 1) : h * (k + 2)]))
        with self._deepstack(additions):
            return self.language_model(inputs_embeds=embeds, use_cache=False).last_hidden_state

    def greedy(self, mel: torch.Tensor, prompt_ids: list[int], prompt_rows: list[int], stop: int,
               max_new: int = MAX_ANSWER_TOKENS) -> list[int]:
        """Greedy answer tokens for one clip (no KV cache: answers are short). It is what the F32
        bundle answers: on the shipped model and set, the same CER to the hundredth."""
        with torch.no_grad():
            rows = self.audio_rows([mel])
            out: list[int] = []
            for _ in range(max_new):
                ids = torch.tensor([prompt_ids + out])
                where = torch.tensor([prompt_rows + [-1] * len(out)])
                nxt = int(self.lm_head(self._hidden(ids, where, rows)[0, -1]).argmax())
                if nxt == stop:
                    break
                out.append(nxt)
        return out

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Joint losses: answer cross-entropy, CTC, with guide layers the guided-attention loss and
        with a time layer the time probe's."""
        rows = self.audio_rows(batch.mels)
        layers = self.language_model.layers
        probe = layer_input(layers, self.time_layer) if self.time_head is not None else nullcontext([])
        with attention_taps(layers, self.guide_layers) as probs, probe as seen:
            hidden = self._hidden(batch.ids, batch.audio_rows, rows)
        where = batch.labels != IGNORE
        logits = self.lm_head(hidden[where])
        ce = F.cross_entropy(logits.float(), batch.labels[where])
        out = {"ce": ce, "ntok": where.sum()}
        log_probs, frames = self._ctc_log_probs(rows)
        if probs:
            targets = self._guide_targets(log_probs.detach(), frames, batch)
            out["guide"] = guide_loss(probs, batch.audio_rows, batch.labels, targets, self.guide_width, IGNORE)
        out["ctc"] = self._ctc(log_probs, frames, batch.ctc_targets)
        if self.time_head is not None:
            out["time"] = time_probe_loss(self.time_head, seen[0], batch.audio_rows, FRONT_END.tokens_per_second)
        return out

    def ctc_only(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The acoustic phase's loss: conv stem, encoder and adapter under character CTC, no
        decoder (a third of a joint step's time)."""
        return {"ctc": self._ctc(*self._ctc_log_probs(self.audio_rows(batch.mels)), batch.ctc_targets)}

    def _ctc_log_probs(self, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log_probs [frames, clips, chars + 1] zero-padded past each clip's end, frames per clip):
        `ctc_upsample` character frames per packed audio row, in time order. Computed once a step
        for both the CTC loss and the guide's forced alignment."""
        h, k, blank = self.config.text.hidden_size, self.ctc_upsample, self.ctc_blank
        main = nn.utils.rnn.pad_sequence([r[:, :h] for r in rows])  # [T, B, h]
        t, b, _ = main.shape
        logits = self.ctc_head(main).view(t, b, k, blank + 1).permute(0, 2, 1, 3).reshape(t * k, b, blank + 1)
        return F.log_softmax(logits.float(), dim=-1), torch.tensor([r.shape[0] * k for r in rows])

    def _guide_targets(self, log_probs: torch.Tensor, frames: torch.Tensor, batch: Batch) -> list[torch.Tensor | None]:
        """Per clip, each answer token's target audio row: its transcript characters forced-aligned
        to this step's CTC outputs (train/align.py); None where no token is anchored."""
        targets: list[torch.Tensor | None] = []
        for i, (anchors, symbols) in enumerate(zip(batch.anchors, batch.ctc_targets)):
            if not anchors.any:
                targets.append(None)
                continue
            first = np.full(len(symbols), -1)
            if anchors.aligned:
                first = ctc_first_frames(log_probs[: int(frames[i]), i].numpy(), symbols.tolist(), self.ctc_blank)
            targets.append(anchors.rows(first, self.ctc_upsample))
        return targets

    def ctc_text(self, mel: torch.Tensor, alphabet: dict[str, int]) -> str:
        """Greedy CTC transcript of one clip's mel [n_mels, T]: what the encoder alone has learned."""
        blank = self.ctc_blank
        with torch.no_grad():
            best = self._ctc_log_probs(self.audio_rows([mel]))[0][:, 0].argmax(-1).tolist()
        chars = {i: c for c, i in alphabet.items()}
        kept = [i for j, i in enumerate(best) if i != blank and (j == 0 or i != best[j - 1])]
        return "".join(chars[i] for i in kept)

    def _ctc(self, log_probs: torch.Tensor, frames: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
        """Mean CTC loss of the clips that have a transcript (zero when none has)."""
        use = [i for i, t in enumerate(targets) if len(t)]
        if not use:
            return log_probs.new_zeros(())
        tgt = torch.cat([targets[i] for i in use])
        tlen = torch.tensor([len(targets[i]) for i in use])
        return F.ctc_loss(log_probs[:, use], tgt, frames[use], tlen, blank=self.ctc_blank, zero_infinity=True)
