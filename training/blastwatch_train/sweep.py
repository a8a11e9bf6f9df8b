"""Training-recipe sweep on a GPU: many configurations at once, one process each.

The shipped model is trained on the 2-core CPU by `training/reproduce.sh` (that is the budget the
model has to fit). A GPU answers the question that CPU time cannot:
which recipe (width, compute size, epochs, regularisation, augmentation) is worth those 90 minutes.

A GPU machine need not have Node.js, so the TypeScript cache may not be buildable there, and the
cache (842 MB) is large to copy. `pack` stores it compactly: originals re-encoded as JPEG (lossy,
quality 90: the sweep's numbers are for ranking recipes, never for the model card) and the
segmentation masks losslessly as packed bits; `unpack` rebuilds a cache of the same format, so the
sweep runs the same `train()` as the pipeline. Masks are exact, so segmented = decoded original x
mask, which is how the daemon builds it too.

    python -m blastwatch_train sweep-pack --cache CACHE --out PACK          # here
    python -m blastwatch_train sweep --pack PACK --split split.json \\
        --configs configs.json --out OUT --device cuda --jobs 16             # on the GPU machine
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from . import CLASS_NAMES
from .augment import AugmentConfig
from .cache import load_cache, write_cache
from .evaluate import metrics, softmax
from .models import count_params
from .pipeline import load_with_split
from .train import TrainConfig, predict_logits, save_checkpoint, train

PACK_FORMAT = "blastwatch-sweep-pack/1"


def pack(cache_dir: Path, out: Path, quality: int = 90) -> dict:
    from PIL import Image

    cache = load_cache(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    n, size = len(cache), cache.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    masks = np.zeros((n, size * size // 8), dtype=np.uint8)
    with open(out / "images.bin", "wb") as f:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(cache.original[i].transpose(1, 2, 0))).save(
                buf, "JPEG", quality=quality)
            f.write(buf.getvalue())
            offsets[i + 1] = offsets[i] + buf.tell()
            mask = cache.segmented[i].max(0) > 0
            if not np.array_equal(cache.original[i] * mask, cache.segmented[i]):
                raise ValueError(f"item {i}: segmented is not original x mask")
            masks[i] = np.packbits(mask.reshape(-1))
    np.save(out / "offsets.npy", offsets)
    (out / "masks.zlib").write_bytes(zlib.compress(masks.tobytes(), 9))
    manifest = {**cache.manifest, "format": PACK_FORMAT, "jpeg_quality": quality}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return {"images": n, "bytes": int(offsets[-1])}


def unpack(pack_dir: Path, cache_dir: Path) -> None:
    from PIL import Image

    manifest = json.loads((pack_dir / "manifest.json").read_text())
    if manifest.get("format") != PACK_FORMAT:
        raise ValueError(f"{pack_dir}: not a {PACK_FORMAT}")
    n, size = int(manifest["count"]), int(manifest["size"])
    offsets = np.load(pack_dir / "offsets.npy")
    blob = (pack_dir / "images.bin").read_bytes()
    masks = np.unpackbits(np.frombuffer(zlib.decompress((pack_dir / "masks.zlib").read_bytes()), np.uint8)
                          .reshape(n, -1), axis=1).reshape(n, size, size).astype(bool)
    original = np.zeros((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        img = Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]])).convert("RGB")
        original[i] = np.asarray(img).transpose(2, 0, 1)
    segmented = original * masks[:, None]
    extra = {k: v for k, v in manifest.items() if k not in ("format", "size", "classes", "count", "items")}
    write_cache(cache_dir, original, segmented, manifest["items"], manifest["classes"], extra)


AUGMENTS = {
    "default": AugmentConfig(),
    # the light jitter the pipeline used next to stain variants before it added the camera shifts
    # (pipeline.VARIANT_AUGMENT)
    "light": AugmentConfig(brightness=0.05, saturation=0.05, hue_degrees=0.0, contrast=0.1, gamma=0.1),
}


def make_config(spec: dict) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    unknown = set(spec) - names - {"name", "aug"}
    if unknown:
        raise ValueError(f"config {spec.get('name')}: unknown keys {sorted(unknown)}")
    cfg = TrainConfig(**{k: v for k, v in spec.items() if k in names and k != "augment"})
    cfg.augment = AUGMENTS[spec.get("aug", "default")]
    return cfg


def run_one(cache_dir: Path, split_path: Path, spec: dict, out: Path, device: str) -> dict:
    torch.set_num_threads(1)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    cache, _, ix = load_with_split(cache_dir, split_path)
    cfg = make_config(spec)
    name = spec["name"]
    net, info = train(cfg, cache, ix["train"], ix["val"], log_path=out / f"{name}.log.jsonl", device=device)
    net.to(device)
    result = {"name": name, "spec": spec, "params": count_params(net), "seconds": info["seconds"],
              "history": info["history"]}
    for split_name in ("val", "test"):
        idx = ix[split_name]
        m = metrics(cache.labels[idx], softmax(predict_logits(net, cache, idx, device=device)), CLASS_NAMES)
        result[split_name] = {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "confusion": m["confusion"],
            "ball_sensitivity": m["malignant"]["sensitivity"],  # P(B-ALL) >= 0.5
            "ball_specificity": m["malignant"]["specificity"],
        }
    save_checkpoint(net.cpu(), info, out / f"{name}.pt")
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def run_sweep(pack_dir: Path | None, cache_dir: Path, split_path: Path, configs_path: Path, out: Path,
              device: str, jobs: int) -> list[dict]:
    """Unpacks (when given a pack), then runs every config in its own process, `jobs` at a time.
    Each config writes OUT/<name>.json when done, so a run cut short still reports what finished."""
    out.mkdir(parents=True, exist_ok=True)
    if pack_dir is not None and not (cache_dir / "manifest.json").exists():
        t0 = time.time()
        unpack(pack_dir, cache_dir)
        print(f"[sweep] unpacked in {time.time() - t0:.1f} s", flush=True)
    specs = json.loads(configs_path.read_text())
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("config names must be unique")
    for s in specs:
        make_config(s)  # fail before starting anything
    pending, running = list(specs), []
    package_root = str(Path(__file__).resolve().parents[1])  # so `-m blastwatch_train` resolves
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    while pending or running:
        while pending and len(running) < jobs:
            s = pending.pop(0)
            log = open(out / f"{s['name']}.stdout", "w")
            cmd = [sys.executable, "-m", "blastwatch_train", "sweep-one", "--cache", str(cache_dir),
                   "--split", str(split_path), "--spec", json.dumps(s), "--out", str(out), "--device", device]
            running.append((s, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        time.sleep(1)
        for item in list(running):
            s, proc, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                print(f"[sweep] {s['name']} exit {proc.returncode}", flush=True)
    results = []
    for s in specs:
        p = out / f"{s['name']}.json"
        if p.exists():
            results.append(json.loads(p.read_text()))
    summary = [{"name": r["name"], "params": r["params"], "seconds": r["seconds"],
                "val_acc": r["val"]["accuracy"], "test_acc": r["test"]["accuracy"],
                "test_sens": r["test"]["ball_sensitivity"],
                "last_train_acc": r["history"][-1]["train_acc"] if r["history"] else None}
               for r in results]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for row in summary:
        print(json.dumps(row), flush=True)
    return results
