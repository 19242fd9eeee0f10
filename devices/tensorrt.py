"""TensorRT engines for the encoder, built on the device itself and cached by GPU and version.

Engines do not travel between GPU models or TensorRT versions: the file name and the manifest
record what built them, and the runtime uses an engine only on a matching GPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from devices.detect import detect
from runtime.chunks import CHUNK_FRAMES
from runtime.errors import BundleError, MissingDependencyError
from runtime.manifest import load_manifest, update_manifest

OPT_CHUNKS = 8  # 32 s of audio: the shape TensorRT tunes for


def engine_key(gpu: str, trt_version: str, precision: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
    return f"{slug}-trt{trt_version}-{precision}"


def build_engine(bundle: Path, *, precision: str = "fp16", max_chunks: int = 32, verbose: bool = False) -> Path:
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError("building an engine needs TensorRT: pip install '.[gpu]' (on Jetson it comes "
                                     "with JetPack)") from None
    bundle = Path(bundle)
    machine = detect()
    if machine.kind == "cpu":
        raise BundleError("no NVIDIA GPU found (nvidia-smi / Jetson device tree): TensorRT engines are built on the "
                          "GPU that will run them")
    manifest = load_manifest(bundle)
    if "fp16" not in manifest.encoders:  # the FP32 variant carries onnxruntime-only fused ops
        raise BundleError("the bundle has no encoder-fp16.onnx (standard ONNX ops): re-export with --encoder fp16")
    source = bundle / manifest.encoders["fp16"].file
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BundleError(f"TensorRT cannot parse {source.name}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    n_mels = manifest.mel.n_mels
    profile = builder.create_optimization_profile()
    for name, tail in (("mel", (n_mels, CHUNK_FRAMES)), ("frames", ()), ("stem_frames", ())):
        profile.set_shape(name, (1, *tail), (min(OPT_CHUNKS, max_chunks), *tail), (max_chunks, *tail))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BundleError("TensorRT could not build the engine (run with --verbose for its log)")
    key = engine_key(machine.model, trt.__version__, precision)
    path = bundle / f"encoder-{key}.engine"
    tmp = path.with_suffix(".engine.tmp")
    tmp.write_bytes(bytes(serialized))
    os.replace(tmp, path)
    entry = {"file": path.name, "gpu": machine.model, "compute_capability": machine.compute_capability,
             "tensorrt": trt.__version__, "precision": precision, "built_from": source.name, "max_chunks": max_chunks}
    update_manifest(bundle, lambda data: data.setdefault("engines", {}).__setitem__(key, entry))
    return path


def matching_engine(bundle: Path, engines: dict, gpu: str) -> dict | None:
    """The engine built on this GPU model with the installed TensorRT, if the bundle has one."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    for entry in engines.values():
        if entry["gpu"] == gpu and entry["tensorrt"] == trt.__version__ and (Path(bundle) / entry["file"]).is_file():
            return entry
    return None
