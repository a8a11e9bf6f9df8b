"""ONNX export (FP32) and onnxruntime static INT8 quantization (QDQ, per-channel, U8S8)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from .cache import Cache, to_float
from .features_output import add_features_output_file
from .models import BlastNet, WithSoftmax, fold_downsample_into_stem

INPUT_NAMES = ["original", "segmented"]
OUTPUT_NAME = "probabilities"
OPSET = 17


def export_onnx(net: BlastNet, path: Path, size: int = 224) -> Path:
    # A copy: folding the input pool into the stem (where the architecture allows) changes the
    # modules but not the function, and the caller's network stays as trained.
    net = copy.deepcopy(net).eval()
    fold_downsample_into_stem(net)
    wrapper = WithSoftmax(net).eval()
    dummy = (torch.rand(1, 3, size, size), torch.rand(1, 3, size, size))
    torch.onnx.export(
        wrapper,
        dummy,
        str(path),
        input_names=INPUT_NAMES,
        output_names=[OUTPUT_NAME],
        dynamic_axes={n: {0: "batch"} for n in INPUT_NAMES + [OUTPUT_NAME]},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    _ensure_both_inputs(model, path, size)
    return path


def _ensure_both_inputs(model: onnx.ModelProto, path: Path, size: int) -> None:
    """Single-input variants ignore one tensor and torch drops unused graph inputs; the daemon
    always feeds both, so put the missing one back as an (unused) declared input."""
    present = {i.name for i in model.graph.input}
    changed = False
    for name in INPUT_NAMES:
        if name not in present:
            vi = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", 3, size, size])
            model.graph.input.append(vi)
            changed = True
    if changed:
        onnx.save(model, str(path))


class CacheCalibrationReader:
    """onnxruntime CalibrationDataReader over cached training tensors (byte/255, like the daemon)."""

    def __init__(self, cache: Cache, indices: np.ndarray, batch: int = 16) -> None:
        self.cache, self.indices, self.batch = cache, np.asarray(indices), batch
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.indices):
            return None
        idx = np.sort(self.indices[self.pos : self.pos + self.batch])
        self.pos += self.batch
        o, s = self.cache.tensors(idx)
        return {"original": to_float(o).numpy(), "segmented": to_float(s).numpy()}

    def rewind(self) -> None:
        self.pos = 0

    def __iter__(self):
        self.rewind()
        while (batch := self.get_next()) is not None:
            yield batch


def quantize_int8(fp32_path: Path, int8_path: Path, cache: Cache, calib_indices: np.ndarray,
                  reduce_range: bool = True, per_channel: bool = True) -> dict:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        # Keep the softmax in float: quantised probabilities would round small classes to 0
        # and make the temperature and the P(B-ALL) threshold coarse.
        exclude = [n.name for n in model.graph.node if n.op_type == "Softmax"]
        reader = CacheCalibrationReader(cache, calib_indices)
        quantize_static(
            str(pre),
            str(int8_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            # U8S8: uint8 activations x int8 weights is the pair MLAS's AVX2 kernels (VPMADDUBSW)
            # take directly; reduce_range keeps their 16-bit intermediate sums from saturating on
            # CPUs without VNNI (onnxruntime quantization docs, "Data type selection").
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=exclude,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    # The out-of-domain gate reads the head's pooled features from the INT8 graph (src/gate/).
    add_features_output_file(int8_path)
    return {
        "format": "QDQ",
        "activations": "uint8 (asymmetric)",
        "weights": "int8 symmetric per-channel" if per_channel else "int8 symmetric per-tensor",
        "reduce_range": reduce_range,
        "calibration": "MinMax",
        "calibration_images": int(len(calib_indices)),
        "excluded": "Softmax (kept float)",
        "opset": OPSET,
    }
