"""Reads the `blastwatch preprocess-dataset` cache (format blastwatch-cache/1).

The cache holds the daemon's exact tensors as raw uint8 N x 3 x S x S (NCHW, C-order):
`original.u8` (decoded, squashed to S x S) and `segmented.u8` (the LAB a* K-means mask applied).
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
