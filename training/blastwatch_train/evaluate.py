"""Metrics, calibration, decision threshold and onnxruntime inference/latency."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .cache import Cache, to_float

MALIGNANT = np.array([False, True, True, True])


def softmax(z: np.ndarray, t: float = 1.0) -> np.ndarray:
    z = z / t
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def calibrate_probs(p: np.ndarray, t: float) -> np.ndarray:
    """What the daemon does with model.json's temperature: p^(1/T) renormalised == softmax(z/T).
    p: [N, C], or [V, N, C] for V test-time views of each image: each view calibrated, then the
    views' probabilities averaged (src/infer/classifier.ts does the same)."""
    return views_softmax(np.log(np.clip(p, 1e-30, 1.0)), t)


def views_softmax(z: np.ndarray, t: float) -> np.ndarray:
    """softmax(z / t) for logits [N, C]; for [V, N, C] the mean over the views of each view's."""
    return np.mean([softmax(v, t) for v in z], axis=0) if z.ndim == 3 else softmax(z, t)


VIEW_COUNTS = (1, 2, 4, 8)


def view(a: np.ndarray, k: int) -> np.ndarray:
    """View k of images [..., H, W], as src/infer/views.ts defines it: if k & 1 mirrored
    left-right, then if k & 2 mirrored top-bottom, then if k & 4 transposed."""
    if k & 1:
        a = a[..., :, ::-1]
    if k & 2:
        a = a[..., ::-1, :]
    if k & 4:
        a = np.swapaxes(a, -1, -2)
    return np.ascontiguousarray(a)


def confusion(y: np.ndarray, pred: np.ndarray, k: int = 4) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def metrics(y: np.ndarray, probs: np.ndarray, classes: list[str], threshold: float | None = None) -> dict:
    """4-class metrics (argmax) plus B-ALL vs benign at the P(B-ALL) threshold (default 0.5)."""
    pred = probs.argmax(1)
    cm = confusion(y, pred, len(classes))
    n = int(cm.sum())
    per_class = {}
    f1s = []
    for c, name in enumerate(classes):
        tp = cm[c, c]
        fp = cm[:, c].sum() - tp
        fn = cm[c, :].sum() - tp
        tn = n - tp - fp - fn
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        spec = tn / (tn + fp) if tn + fp else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if cm[c, :].sum() or cm[:, c].sum():  # a class neither present nor predicted says nothing
            f1s.append(f1)
        per_class[name] = {
            "precision": float(prec), "recall": float(rec), "specificity": float(spec),
            "f1": float(f1), "support": int(cm[c].sum()),
        }
    p_ball = 1.0 - probs[:, 0]
    thr = 0.5 if threshold is None else threshold
    truth = MALIGNANT[y]
    flagged = p_ball >= thr
    tp = int((flagged & truth).sum())
    fn = int((~flagged & truth).sum())
    tn = int((~flagged & ~truth).sum())
    fp = int((flagged & ~truth).sum())
    return {
        "n": n,
        "accuracy": float(np.trace(cm) / n) if n else float("nan"),
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "confusion": cm.tolist(),
        "per_class": per_class,
        "malignant": {
            "threshold": float(thr),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "tp": tp, "fn": fn, "tn": tn, "fp": fp,
        },
    }


def ece(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising validation NLL (1-D search on log T; no test data involved).
    logits [N, C], or [V, N, C]: the NLL of the views' averaged calibrated probabilities."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))

    def nll(t: float) -> float:
        p = views_softmax(logits, t)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    best = min(grid, key=nll)
    fine = np.exp(np.linspace(np.log(best) - 0.02, np.log(best) + 0.02, 41))
    return float(min(fine, key=nll))


def choose_threshold(p_ball: np.ndarray, malignant: np.ndarray, target_sensitivity: float = 0.995) -> float:
    """Largest P(B-ALL) threshold whose validation sensitivity is >= target, halved towards 0
    (a margin: validation has few hundred malignant images, so sit below the boundary case)."""
    pos = np.sort(p_ball[malignant])
    if len(pos) == 0:
        return 0.5
    # allowed misses: floor((1 - target) * n_pos)
    allowed = int(np.floor((1 - target_sensitivity) * len(pos) + 1e-9))
    boundary = float(pos[allowed])  # flagging p >= boundary misses `allowed` positives
    return float(min(0.5, boundary / 2))


def uncertain_band(threshold: float) -> list[float]:
    return [float(threshold / 2), float(min(0.95, max(0.5, 1 - (1 - threshold) / 2)))]


class OrtModel:
    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, original: np.ndarray, segmented: np.ndarray) -> np.ndarray:
        feeds = {"original": original, "segmented": segmented}
        return self.session.run(["probabilities"], {k: feeds[k] for k in self.inputs})[0]

    def predict(self, cache: Cache, indices: np.ndarray, batch: int = 32, views: int = 1) -> np.ndarray:
        """Raw softmax [N, C]; with views > 1, [V, N, C]: view k of every image (see `view`)."""
        if views not in VIEW_COUNTS:
            raise ValueError(f"views must be one of {VIEW_COUNTS}, got {views}")
        out = []
        for start in range(0, len(indices), batch):
            o, s = cache.tensors(np.asarray(indices[start : start + batch]))
            o, s = to_float(o).numpy(), to_float(s).numpy()
            out.append(np.stack([self.run(view(o, k), view(s, k)) for k in range(views)]))
        p = np.concatenate(out, axis=1) if out else np.zeros((views, 0, 4), np.float32)
        return p if views > 1 else p[0]


def latency_ms(path: Path, size: int = 224, runs: int = 50, warmup: int = 5, threads: int = 1) -> dict:
    """Median/p90 wall time of one batch-1 inference, onnxruntime CPU, `threads` intra-op threads."""
    m = OrtModel(path, threads=threads)
    rng = np.random.default_rng(0)
    o = rng.random((1, 3, size, size), dtype=np.float32)
    s = o * (rng.random((1, 1, size, size)) > 0.5).astype(np.float32)
    for _ in range(warmup):
        m.run(o, s)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        m.run(o, s)
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "runs": runs, "threads": threads, "batch": 1}
