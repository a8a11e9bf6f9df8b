"""Reads the `blastwatch preprocess-dataset` cache (format blastwatch-cache/1).

The cache holds the daemon's exact tensors as raw uint8 N x 3 x S x S (NCHW, C-order):
`original.u8` (decoded, squashed to S x S, colour-normalised when the manifest's `colour` says so)
and `segmented.u8` (the LAB a* K-means mask applied). A manifest without `colour` (or null) is a
cache of unnormalised images; the report copies `colour` into model.json for the daemon.
The model input is byte / 255, computed as `torch.from_numpy(u8).float() / 255` — the same
float32 the daemon builds — so Python never decodes, resizes or segments an image itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CACHE_FORMAT = "blastwatch-cache/1"


class CacheError(Exception):
    pass


@dataclass
class Cache:
    root: Path
    manifest: dict
    original: np.ndarray  # uint8 N x 3 x S x S (memory-mapped)
    segmented: np.ndarray

    @property
    def items(self) -> list[dict]:
        return self.manifest["items"]

    @property
    def labels(self) -> np.ndarray:
        return np.array([it["label"] for it in self.items], dtype=np.int64)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    def __len__(self) -> int:
        return len(self.items)

    def tensors(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 torch tensors for the given cache indices (copied out of the memory map)."""
        idx = np.asarray(indices, dtype=np.int64)
        return (
            torch.from_numpy(np.ascontiguousarray(self.original[idx])),
            torch.from_numpy(np.ascontiguousarray(self.segmented[idx])),
        )


class StainVariants:
    """Re-stained copies of training images, each set a cache of its own.

    `scripts/perturb-images.ts --kind stain --seed N` changes exposure, saturation and hue of each
    training image, and `blastwatch preprocess-dataset` runs the copies through the daemon's own
    decode and segmentation, so a variant's `segmented` tensor carries the mask that stain really
    produces (a colour change moves a*, and with it the K-means threshold). Augmenting tensors in
    Python could only recolour the old mask. Items are matched to the base cache by class folder and
    file stem (the copies are PNGs of JPEG originals).
    """

    def __init__(self, base: Cache, sets: list[Cache]) -> None:
        by_stem = {_stem(it["path"]): it["index"] for it in base.items}
        self.sets = sets
        # table[v, base_index] = index in sets[v], or -1 when that set lacks the image
        self.table = np.full((len(sets), len(base)), -1, dtype=np.int64)
        for v, c in enumerate(sets):
            if c.size != base.size or c.classes != base.classes:
                raise CacheError(f"{c.root}: size/classes differ from the base cache {base.root}")
            # the copies must see the model's colour normalisation, or training would mix two inputs
            if c.manifest.get("colour") != base.manifest.get("colour"):
                raise CacheError(f"{c.root}: colour normalisation differs from the base cache {base.root}")
            for it in c.items:
                b = by_stem.get(_stem(it["path"]))
                if b is None:
                    raise CacheError(f"{c.root}: {it['path']} has no original in {base.root}")
                if base.items[b]["label"] != it["label"]:
                    raise CacheError(f"{c.root}: {it['path']} has another label than its original")
                self.table[v, b] = it["index"]

    def __len__(self) -> int:
        return len(self.sets)

    def coverage(self, indices: np.ndarray) -> float:
        """Share of (set, image) pairs present for these base indices."""
        return float((self.table[:, indices] >= 0).mean()) if len(self.sets) else 0.0

    def tensors(self, base: Cache, indices: np.ndarray, choice: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 tensors: image i from the base cache when choice[i] == 0, else from set choice[i]-1
        (falling back to the base when that set lacks it)."""
        o, s = base.tensors(indices)
        for i, (b, v) in enumerate(zip(indices, choice)):
            if v <= 0:
                continue
            j = self.table[v - 1, b]
            if j >= 0:
                c = self.sets[v - 1]
                # np.array copies out of the read-only memory map (torch warns on a read-only view)
                o[i] = torch.from_numpy(np.array(c.original[j]))
                s[i] = torch.from_numpy(np.array(c.segmented[j]))
        return o, s


def _stem(rel: str) -> str:
    return rel.rsplit(".", 1)[0]


def load_stain_variants(base: Cache, root: str | Path | None) -> StainVariants | None:
    """Every cache directly under `root` (e.g. stain-1, stain-2, ...), in name order; None without root."""
    if root is None:
        return None
    root = Path(root)
    dirs = sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []
    if not dirs:
        raise CacheError(f"{root}: no variant caches (folders with manifest.json) found")
    return StainVariants(base, [load_cache(d) for d in dirs])


def to_float(u8: torch.Tensor) -> torch.Tensor:
    """The one and only byte -> model-input conversion (the parity test checks it)."""
    return u8.float() / 255


def load_cache(root: str | Path) -> Cache:
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise CacheError(f"{manifest_path} not found: run `blastwatch preprocess-dataset` first")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise CacheError(f"{manifest_path}: format {manifest.get('format')!r}, expected {CACHE_FORMAT!r}")
    n, size = int(manifest["count"]), int(manifest["size"])
    if len(manifest["items"]) != n:
        raise CacheError(f"{manifest_path}: count {n} but {len(manifest['items'])} items")
    for pos, item in enumerate(manifest["items"]):
        if item["index"] != pos:
            raise CacheError(f"{manifest_path}: item {pos} has index {item['index']}")
    arrays = []
    for name in ("original.u8", "segmented.u8"):
        path = root / name
        expected = n * 3 * size * size
        actual = path.stat().st_size if path.is_file() else -1
        if actual != expected:
            raise CacheError(f"{path}: {actual} bytes, expected {expected} (= {n} x 3 x {size} x {size})")
        arrays.append(np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3, size, size)))
    return Cache(root=root, manifest=manifest, original=arrays[0], segmented=arrays[1])


def write_cache(root: str | Path, original: np.ndarray, segmented: np.ndarray, items: list[dict],
                classes: list[str], extra: dict | None = None) -> None:
    """Writes a cache in the same format (used by tests to build synthetic caches)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    assert original.dtype == np.uint8 and original.shape == segmented.shape
    np.ascontiguousarray(original).tofile(root / "original.u8")
    np.ascontiguousarray(segmented).tofile(root / "segmented.u8")
    manifest = {
        "format": CACHE_FORMAT,
        "size": int(original.shape[-1]),
        "classes": classes,
        "count": len(items),
        "items": items,
        "failed": [],
        **(extra or {}),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
