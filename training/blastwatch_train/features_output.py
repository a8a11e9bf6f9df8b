"""Adds the classifier head's pooled-feature input as a second ONNX output, `features`.

The out-of-domain gate measures how far an image's pooled features lie from the training
classes (src/gate/). Those features are the float tensor the head's Gemm consumes, after the
last Dequantize in an INT8 graph, so the distance the daemon computes is the one the fitted
statistics describe. Only an output is added: weights and every existing node stay as they
are, and `probabilities` keeps its name, position and values.

    python -m blastwatch_train add-features-output --model models/blastwatch-int8.onnx

After running it on a shipped file, its sha256 changes: update model.json (files.int8 sha256 and
bytes, and the version's hash suffix) and rerun the gate fitting.
"""

from __future__ import annotations

from pathlib import Path

import onnx

FEATURES_OUTPUT = "features"
PROBABILITIES_OUTPUT = "probabilities"


def _producer_of(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def head_input_name(graph: onnx.GraphProto) -> str:
    """The float tensor the classifier head (the Gemm/MatMul that feeds the softmax) reads."""
    producer = _producer_of(graph)
    node = producer.get(PROBABILITIES_OUTPUT)
    seen = 0
    while node is not None and node.op_type not in ("Gemm", "MatMul") and seen < 16:
        node = producer.get(node.input[0])
        seen += 1
    if node is None or node.op_type not in ("Gemm", "MatMul"):
        raise ValueError("no Gemm/MatMul head found upstream of the probabilities output")
    return node.input[0]


def add_features_output(model: onnx.ModelProto) -> bool:
    """Adds `features` ([batch, channels], float) in place; False when it is already there."""
    graph = model.graph
    if any(o.name == FEATURES_OUTPUT for o in graph.output):
        return False
    source = head_input_name(graph)
    channels = None
    for init in graph.initializer:
        # The head's weight: [classes, channels] for Gemm with transB=1 (torch's Linear).
        if "head" in init.name and len(init.dims) == 2:
            channels = int(init.dims[1])
    # An Identity gives the output its own name, whatever the producer's tensor is called.
    graph.node.append(onnx.helper.make_node("Identity", [source], [FEATURES_OUTPUT], name="features_output"))
    graph.output.append(
        onnx.helper.make_tensor_value_info(FEATURES_OUTPUT, onnx.TensorProto.FLOAT, ["batch", channels])
    )
    onnx.checker.check_model(model)
    return True


def add_features_output_file(path: Path, out: Path | None = None) -> bool:
    model = onnx.load(str(path))
    changed = add_features_output(model)
    if changed or (out is not None and out != path):
        onnx.save(model, str(out or path))
    return changed
