"""The encoder's TensorRT backend: an engine from `python -m devices build-engine` on this GPU.

Imported only when such an engine is used; tensorrt and cuda-python come with the `gpu`
extra (JetPack on Jetson). The engine's own tensor shapes say what it takes and makes, so a
stale or foreign engine is caught by the same checks as an ONNX graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.chunks import stem_out_len
from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT, WINDOW_INPUTS


class TensorRTBackend:
    providers = ["TensorRT"]

    def __init__(self, engine: Path, verbose: bool = False):
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.ERROR)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(engine).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {Path(engine).name}")
        self.context = self.engine.create_execution_context()
        mel_max = self.engine.get_tensor_profile_shape("mel", 0)[2]  # (min, opt, max) shapes of profile 0
        self.max_chunks, self.n_mels, self.chunk_frames = int(mel_max[0]), int(mel_max[1]), int(mel_max[2])
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        self.inputs = ENCODER_INPUTS if "frames" in names else WINDOW_INPUTS
        out = self.engine.get_tensor_shape(ENCODER_OUTPUT)  # (-1, tokens or -1 for variable chunks, width)
        self.chunk_tokens = int(out[1]) if int(out[1]) > 0 else stem_out_len(self.chunk_frames)
        self.width = int(out[2])
        self.stream = self._check(cudart.cudaStreamCreate())
        sizes = {"mel": self.max_chunks * self.n_mels * self.chunk_frames * 4,
                 **{name: self.max_chunks * 8 for name in self.inputs[1:]},
                 ENCODER_OUTPUT: self.max_chunks * self.chunk_tokens * self.width * 4}
        self.buffers = {name: self._check(cudart.cudaMalloc(size)) for name, size in sizes.items()}
        for name, ptr in self.buffers.items():
            self.context.set_tensor_address(name, ptr)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        cudart = self.cudart
        kind = cudart.cudaMemcpyKind
        for name in self.inputs:
            host = np.ascontiguousarray(feeds[name])
            self.context.set_input_shape(name, host.shape)
            self._check(cudart.cudaMemcpyAsync(self.buffers[name], host.ctypes.data, host.nbytes,
                                               kind.cudaMemcpyHostToDevice, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        out = np.empty(tuple(self.context.get_tensor_shape(ENCODER_OUTPUT)), dtype=np.float32)
        self._check(cudart.cudaMemcpyAsync(out.ctypes.data, self.buffers[ENCODER_OUTPUT], out.nbytes,
                                           kind.cudaMemcpyDeviceToHost, self.stream))
        self._check(cudart.cudaStreamSynchronize(self.stream))
        return out

    def _check(self, result):
        err, *value = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return value[0] if value else None

    def close(self) -> None:
        for ptr in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(ptr)
        self.buffers = {}

    __del__ = close
