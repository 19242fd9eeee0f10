"""Encoder precisions from the traced FP32 graph, with onnxruntime's own tools.

Measured on the `small` synthetic encoder (9.3 s + 4 s clips, against the PyTorch reference):
* fused FP32 (onnxruntime transformer optimizer: GELU/BiasGelu, SkipLayerNorm): max relative
  error 1.45e-6 (unfused 1.35e-6), ~8% faster on 2 CPU cores. Fused ops are onnxruntime
  contrib ops, so FP16/INT8 are derived from the unfused graph (TensorRT runs standard ops).
* FP16 with LayerNorm/Softmax kept in FP32: max rel 1.13e-3 (1.25e-3 all-FP16); FP32 LayerNorm
  also avoids FP16 variance overflow on large real activations.
* FP16 on the trained tiny model: the DeepStack mergers' down_proj outputs reach 79819 (> 65504)
  on some clips, and 9 of its 110 evaluation clips came out inf/NaN; the adapter's and mergers'
  down_proj MatMuls (what feeds the LLM's residual stream) and the Concat that packs the rows
  are kept in FP32.
* INT8 dynamic, per-channel weights: all MatMuls -> cosine 0.971 (broken; v_proj alone 0.973).
  By kind alone: fc2 0.99994, stem 0.999999, fc1 0.99947, q 0.99957, out_proj 0.99885,
  adapter/merger down 0.99871. Shipped: fc1, fc2 and stem quantized -> cosine 0.99944.
* INT8 weights in 7 bits (`reduce_range`): x86 CPUs without VNNI (AVX2, AVX-512F) multiply
  u8 activations by s8 weights through int16 pairs that saturate. On an AVX2-only EPYC the tiny
  test checkpoint's INT8 rows came out at cosine 0.9976-0.9984 (max relative error 0.045-0.075)
  with 8-bit weights, and 0.99979-0.99986 (<= 0.022) with 7-bit ones. A bundle is built once for
  every CPU it meets, so it is always built with 7-bit weights.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

FP16_KEEP_FP32_OPS = ("LayerNormalization", "Softmax")
FP16_KEEP_FP32_MODULES = ("down_proj",)  # of the adapter and the DeepStack mergers, see above
INT8_MODULE_KINDS = ("fc1", "fc2", "stem_proj")  # the rest measured too sensitive, see above
# Execution providers each variant is built to run well on, recorded in the manifest.
PROVIDERS = {
    "fp32": ["CPUExecutionProvider", "CUDAExecutionProvider"],
    "fp16": ["CUDAExecutionProvider", "TensorrtExecutionProvider"],
    "int8": ["CPUExecutionProvider"],
}
# Bits of the integer variants' weights (int8: reduce_range=True below, see above), recorded in the
# manifest so the runtime can tell bundles exported before it from these.
WEIGHT_BITS = {"int8": 7}


PAGE = 4096  # external data offsets on page boundaries: onnxruntime maps such weights instead of copying them
EXTERNAL_MIN_BYTES = 1024


def save(model, path: Path) -> str:
    """The graph in `path`, every weight of 1 KB or more in `<name>.data` at a page-aligned offset,
    so onnxruntime memory-maps the weights: a session loads in a fraction of a second and
    processes on one machine share one copy through the page cache (without prepacking)."""
    import onnx
    from onnx.external_data_helper import set_external_data

    location = path.name + ".data"
    offset = 0
    with open(path.with_name(location), "wb") as data:
        for tensor in _tensors(model.graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise ValueError(f"{tensor.name} still points at external data: load it first")
            raw = onnx.numpy_helper.to_array(tensor).tobytes()
            if len(raw) < EXTERNAL_MIN_BYTES:
                continue
            pad = -offset % PAGE
            data.write(b"\0" * pad)
            offset += pad
            data.write(raw)
            for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                tensor.ClearField(field)
            tensor.raw_data = raw  # set_external_data wants the raw form it replaces
            set_external_data(tensor, location, offset=offset, length=len(raw))
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            offset += len(raw)
    onnx.save_model(model, str(path))
    return location


def _tensors(graph):
    """Initializers, also those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node:
                yield from _tensors(attr.g)


def fused_fp32(raw: Path, heads: int, hidden: int):
    """onnxruntime's transformer fusions (GELU, SkipLayerNorm); attention is left as traced."""
    from onnxruntime.transformers.optimizer import optimize_model

    return optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1).model


def fp16(raw: Path):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(raw))
    outputs = {o.name for o in model.graph.output}
    keep = [n.name for n in model.graph.node  # and the node that packs the rows, else they are cast back
            if (n.op_type == "MatMul" and _module_path(n).rsplit(".", 1)[-1] in FP16_KEEP_FP32_MODULES)
            or outputs & set(n.output)]
    model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True,
                                     op_block_list=list(FP16_KEEP_FP32_OPS), node_block_list=keep)
    return _drop_round_trips(model)


def _drop_round_trips(model):
    """The converter puts FP32 -> FP16 -> FP32 casts between two FP32 nodes; the round trip
    overflows what it was meant to protect, so the consumer takes the FP32 tensor directly."""
    import onnx

    to = onnx.TensorProto
    made_by = {o: n for n in model.graph.node for o in n.output}

    def cast_to(n, dtype) -> bool:
        return n.op_type == "Cast" and any(a.name == "to" and a.i == dtype for a in n.attribute)

    for n in model.graph.node:
        first = made_by.get(n.input[0]) if n.input else None
        if cast_to(n, to.FLOAT) and first is not None and cast_to(first, to.FLOAT16):
            n.op_type, n.input[0] = "Identity", first.input[0]
            del n.attribute[:]
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for n in [n for n in model.graph.node if n.op_type == "Cast" and not used & set(n.output)]:
        model.graph.node.remove(n)
    return model


def int8(raw: Path, out: Path, external: bool):
    """Dynamic INT8 (per-channel weights) on the MatMuls of the modules in INT8_MODULE_KINDS; the
    quantizer writes `out` (its weights outside past protobuf's limit), the model is returned."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    chosen = [n.name for n in onnx.load(str(raw), load_external_data=False).graph.node
              if n.op_type == "MatMul" and _module_kind(n) in INT8_MODULE_KINDS]
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # it suggests pre-processing on every call
    try:
        quantize_dynamic(str(raw), str(out), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=chosen,
                         use_external_data_format=external)
    finally:
        root.level = level
    return onnx.load(str(out))


def _module_path(node) -> str:
    """The torch module path the exporter recorded for `node` (e.g. 'tower.adapter.down_proj'), or ''."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
    modules = [s for s in scopes if s.startswith("tower.")]
    return modules[-1] if modules else ""


def _module_kind(node) -> str:
    """The last part of an encoder module's path (e.g. 'fc1'); '' for the adapter and mergers."""
    path = _module_path(node)
    if not path or any(k in path for k in ("adapter", "merger")):
        return ""
    return path.rsplit(".", 1)[-1]
