"""The features output: added to a graph without one, probabilities unchanged, idempotent."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from blastwatch_train.features_output import FEATURES_OUTPUT, add_features_output

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "blastwatch-int8.onnx"


def _without_features(model: onnx.ModelProto) -> onnx.ModelProto:
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    outputs = [o for o in stripped.graph.output if o.name != FEATURES_OUTPUT]
    del stripped.graph.output[:]
    stripped.graph.output.extend(outputs)
    nodes = [n for n in stripped.graph.node if FEATURES_OUTPUT not in n.output]
    del stripped.graph.node[:]
    stripped.graph.node.extend(nodes)
    return stripped


def _run(model: onnx.ModelProto):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(0)
    feeds = {n: rng.rand(2, 3, 224, 224).astype(np.float32) for n in ("original", "segmented")}
    return session.run(None, feeds)


def test_adds_the_head_input_as_features_without_changing_probabilities():
    shipped = onnx.load(str(SHIPPED))
    assert add_features_output(shipped) is False, "the shipped file already has it"
    bare = _without_features(shipped)
    (before,) = _run(bare)
    assert add_features_output(bare) is True
    after, features = _run(bare)
    assert np.array_equal(before, after)
    assert features.shape == (2, 1280)
    assert add_features_output(bare) is False
