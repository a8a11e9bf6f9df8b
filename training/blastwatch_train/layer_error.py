"""Per-layer INT8 error: where along the graph the quantized activations drift from FP32.

Uses onnxruntime.quantization.qdq_loss_debug: both graphs get their intermediate tensors as
extra outputs, a few calibration-style batches run through each, and every activation that
exists in both is compared (SQNR in dB, higher is better; < ~20 dB is where accuracy suffers).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .cache import Cache
from .export import CacheCalibrationReader


def per_layer_error(fp32: Path, int8: Path, cache: Cache, indices: np.ndarray, worst: int = 10) -> list[dict]:
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    with tempfile.TemporaryDirectory() as tmp:
        f_aug, q_aug = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        modify_model_output_intermediate_tensors(str(fp32), str(f_aug))
        modify_model_output_intermediate_tensors(str(int8), str(q_aug))
        f_act = collect_activations(str(f_aug), CacheCalibrationReader(cache, indices, batch=8))
        q_act = collect_activations(str(q_aug), CacheCalibrationReader(cache, indices, batch=8))
    matched = create_activation_matching(q_act, f_act)
    errors = compute_activation_error(matched)
    rows = [
        {"tensor": name, "sqnr_db": float(e["xmodel_err"])}
        for name, e in errors.items()
        if "xmodel_err" in e and np.isfinite(e["xmodel_err"])
    ]
    rows.sort(key=lambda r: r["sqnr_db"])
    return rows[:worst]
