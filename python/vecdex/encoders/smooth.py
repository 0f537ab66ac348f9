"""Activation smoothing before dynamic int8 quantisation, after SmoothQuant (Xiao et al., ICML 2023).

Dynamic quantisation gives each activation tensor one int8 range per run. A few outlier channels
(in MiniLM the layer-norm and GELU outputs reach 10-15x their median channel's magnitude) then
squeeze every other channel into a handful of levels. Smoothing divides input channel j of each
quantised MatMul by s_j and multiplies row j of its weight by s_j: the float product is unchanged,
the activation's channels become even, and the weight, quantised per output column, takes the
range instead. s_j = max|x_j|^alpha / max_n |W_jn|^(1 - alpha), with max|x_j| measured on
calibration texts. The division is one Mul node in front of each MatMul, folded into nothing else,
because in a post-norm transformer the layer norm's output also feeds the residual path.
"""
from __future__ import annotations

import numpy as np

from ._deps import require

_SCALE_LIMIT = 1e4  # s_j is clipped to [1/limit, limit] so no channel is scaled into float32 noise


def smoothable_nodes(graph, op_types, excluded):
    """Nodes of `op_types` whose second input is a constant 2-D weight (MatMul; the fused
    Attention op's packed QKV weight), minus the `excluded` node names."""
    float32 = require("onnx").TensorProto.FLOAT
    inits = {i.name: i for i in graph.initializer}
    out = []
    for node in graph.node:
        if node.op_type not in op_types or node.name in excluded or len(node.input) < 2:
            continue
        w = inits.get(node.input[1])
        if w is not None and len(w.dims) == 2 and w.data_type == float32:
            out.append(node)
    return out


def activation_maxima(model, tokenizer, tensor_names, texts, threads=None, batch_size=16):
    """Per-channel max |activation| of each named tensor over `texts` (padding tokens included,
    since dynamic quantisation sees them too)."""
    onnx = require("onnx")
    ort = require("onnxruntime")
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for name in tensor_names:
        if name not in have:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    so.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with_type_ids = "token_type_ids" in {i.name for i in sess.get_inputs()}
    maxima = {name: None for name in tensor_names}
    encodings = tokenizer.encode(list(texts))
    for start in range(0, len(encodings), batch_size):
        feeds = tokenizer.pad(encodings[start:start + batch_size], with_type_ids)
        for name, value in zip(tensor_names, sess.run(list(tensor_names), feeds)):
            m = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = m if maxima[name] is None else np.maximum(maxima[name], m)
    return maxima


def smooth_model(model, nodes, maxima, alpha):
    """A copy of `model` with each of `nodes` smoothed (see the module docstring)."""
    onnx = require("onnx")
    numpy_helper, helper = onnx.numpy_helper, onnx.helper
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {i.name: i for i in out.graph.initializer}
    names = {n.name for n in nodes}
    weight_uses = {}
    for node in out.graph.node:
        for i in node.input:
            weight_uses[i] = weight_uses.get(i, 0) + 1
    new_nodes = []
    for node in out.graph.node:
        if node.name in names and weight_uses.get(node.input[1], 0) == 1:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            a = maxima[node.input[0]]
            if a is not None and a.shape[0] == w.shape[0]:
                s = np.power(np.maximum(a, 1e-6), alpha) / np.power(np.maximum(np.abs(w).max(axis=1), 1e-6), 1 - alpha)
                s = np.clip(s, 1 / _SCALE_LIMIT, _SCALE_LIMIT).astype(np.float32)
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], node.input[1]))
                scale_name, smoothed = node.name + "/smooth_scale", node.name + "/smoothed_input"
                out.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), scale_name))
                new_nodes.append(helper.make_node("Mul", [node.input[0], scale_name], [smoothed], name=node.name + "/smooth"))
                node.input[0] = smoothed
        new_nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    return out
