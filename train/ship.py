"""Write the trained checkpoint folder in the upstream HF layout export/ reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from train.tokenizer import TOKENIZER_FILES


def write_model_folder(folder: Path, config_raw: dict, state: dict[str, torch.Tensor], tokenizer_dir: Path,
                       dtype: str) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_raw, indent=2))
    torch_dtype = getattr(torch, dtype)
    tensors = {k: v.detach().to(torch_dtype).contiguous() for k, v in state.items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        shutil.copy2(tokenizer_dir / name, folder / name)
