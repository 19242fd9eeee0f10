"""TensorRT engines for the encoder, built on the device itself and cached by GPU and version.

Engines do not travel between GPU models or TensorRT versions: the file name and the manifest
record what built them (with the file's sha256, like every other part), and the plan uses an
engine only on a matching GPU.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from runtime.atomic import write_bytes_atomic
from runtime.errors import BundleError, MissingDependencyError
from runtime.manifest import EngineInfo, file_digest, load_manifest, update_manifest
from runtime.placement.detect import detect

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
        raise BundleError("no NVIDIA GPU found (NVML / nvidia-smi / Jetson device tree): TensorRT engines are built "
                          "on the GPU that will run them")
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
    a = manifest.audio
    profile = builder.create_optimization_profile()
    inputs = {"mel": (a.n_mels, a.chunk_frames)}  # a windowed family's graph takes whole windows only
    inputs |= {} if a.window_samples else {"frames": (), "stem_frames": ()}
    for name, tail in inputs.items():
        profile.set_shape(name, (1, *tail), (min(OPT_CHUNKS, max_chunks), *tail), (max_chunks, *tail))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BundleError("TensorRT could not build the engine (run with --verbose for its log)")
    key = engine_key(machine.model, trt.__version__, precision)
    path = bundle / f"encoder-{key}.engine"
    write_bytes_atomic(path, bytes(serialized))
    entry = EngineInfo(file=path.name, gpu=machine.model, compute_capability=machine.compute_capability,
                       tensorrt=trt.__version__, precision=precision, built_from=source.name, max_chunks=max_chunks)
    update_manifest(bundle, lambda m: dataclasses.replace(
        m, engines={**m.engines, key: entry}, files={**m.files, path.name: file_digest(path)}))
    return path
