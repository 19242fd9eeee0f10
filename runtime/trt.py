"""The encoder's TensorRT backend: an engine from `python -m devices build-engine` on this GPU.

Imported only when such an engine is used; tensorrt and cuda-python come with the `gpu`
extra (JetPack on Jetson).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT


class TensorRTBackend:
    providers = ["TensorRT"]

    def __init__(self, engine: Path, n_mels: int, width: int, max_chunks: int):
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.ERROR)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(engine).read_bytes())
        self.context = self.engine.create_execution_context()
        self.n_mels, self.width, self.max_chunks = n_mels, width, max_chunks
        self.stream = self._check(cudart.cudaStreamCreate())
        tokens = 50  # 400 frames through the stem
        sizes = {"mel": max_chunks * n_mels * 400 * 4, "frames": max_chunks * 8, "stem_frames": max_chunks * 8,
                 ENCODER_OUTPUT: max_chunks * tokens * width * 4}
        self.buffers = {name: self._check(cudart.cudaMalloc(size)) for name, size in sizes.items()}
        for name, ptr in self.buffers.items():
            self.context.set_tensor_address(name, ptr)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        cudart = self.cudart
        kind = cudart.cudaMemcpyKind
        for name in ENCODER_INPUTS:
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

    def __del__(self):
        for ptr in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(ptr)
