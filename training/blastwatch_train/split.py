"""Deduplicated, near-duplicate-grouped, stratified train/val/test split.

1. Exact duplicates (same file sha256 in the cache manifest) are dropped, keeping the first path.
2. Near-identical images are grouped: a 64-bit DCT perceptual hash of the grey original tensor
   (from the cache), pairs with Hamming distance <= threshold joined by union-find. A group
   always lands on one side of the split, so a re-saved or slightly shifted twin of a test
   image cannot sit in training.
3. Groups are shuffled with a fixed seed and assigned, per class, to the split furthest below
   its target share.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from .cache import Cache

SPLITS = ("train", "val", "test")


def dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def perceptual_hashes(cache: Cache, batch: int = 256) -> np.ndarray:
    """N x 64 bool: pHash (32x32 grey, 2-D DCT, top-left 8x8 vs its median, DC excluded)."""
    d = dct_matrix(32)
    out = []
    for start in range(0, len(cache), batch):
        u8 = torch.from_numpy(np.array(cache.original[start : start + batch]))
        x = u8.float()
        grey = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        small = torch.nn.functional.adaptive_avg_pool2d(grey.unsqueeze(1), 32)[:, 0].numpy()
        coeffs = d @ small @ d.T  # N x 32 x 32
        low = coeffs[:, :8, :8].reshape(len(small), 64)
        med = np.median(low[:, 1:], axis=1, keepdims=True)
        out.append(low > med)
    return np.concatenate(out).astype(bool)


def hamming_matrix(bits: np.ndarray) -> np.ndarray:
    a = bits.astype(np.int32)
    return a @ (1 - a).T + (1 - a) @ a.T


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def make_split(cache: Cache, seed: int = 0, fractions=(0.70, 0.15, 0.15),
               phash_threshold: int = 10) -> dict:
    items = cache.items
    # 1. exact duplicates
    first_by_sha: dict[str, int] = {}
    duplicates: list[dict] = []
    keep: list[int] = []
    for it in items:
        sha = it["sha256"]
        if sha in first_by_sha:
            duplicates.append({"path": it["path"], "duplicate_of": items[first_by_sha[sha]]["path"]})
        else:
            first_by_sha[sha] = it["index"]
            keep.append(it["index"])
    # 2. near-duplicate groups among the kept images
    bits = perceptual_hashes(cache)[keep]
    dist = hamming_matrix(bits)
    uf = UnionFind(len(keep))
    ii, jj = np.nonzero(np.triu(dist <= phash_threshold, k=1))
    for a, b in zip(ii.tolist(), jj.tolist()):
        uf.union(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for pos in range(len(keep)):
        groups[uf.find(pos)].append(keep[pos])
    group_list = sorted(groups.values(), key=lambda g: items[g[0]]["path"])
    mixed_label_groups = sum(1 for g in group_list if len({items[i]["label"] for i in g}) > 1)
    # 3. stratified assignment of whole groups
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(group_list))
    per_class_total = Counter(items[i]["label"] for i in keep)
    assigned: dict[str, Counter] = {s: Counter() for s in SPLITS}
    members: dict[str, list[int]] = {s: [] for s in SPLITS}
    for gi in order:
        g = group_list[gi]
        label = Counter(items[i]["label"] for i in g).most_common(1)[0][0]
        deficits = [
            fractions[k] * per_class_total[label] - assigned[s][label] for k, s in enumerate(SPLITS)
        ]
        s = SPLITS[int(np.argmax(deficits))]
        assigned[s][label] += len(g)
        members[s].extend(g)
    classes = cache.classes
    split = {
        "format": "blastwatch-split/1",
        "seed": seed,
        "fractions": dict(zip(SPLITS, fractions)),
        "classes": classes,
        "source": {"cache_count": len(items), "cache_failed": len(cache.manifest.get("failed", []))},
        "dedupe": {
            "exact_duplicates_dropped": len(duplicates),
            "kept": len(keep),
            "duplicates": duplicates,
        },
        "near_duplicates": {
            "method": "pHash: grey (0.299R+0.587G+0.114B) of the cached original, 32x32 area "
            "mean, 2-D DCT-II, top-left 8x8 > median (DC excluded); union-find over pairs",
            "hamming_threshold": phash_threshold,
            "groups": len(group_list),
            "groups_with_more_than_one_image": sum(1 for g in group_list if len(g) > 1),
            "images_in_multi_image_groups": sum(len(g) for g in group_list if len(g) > 1),
            "largest_group": max(len(g) for g in group_list),
            "groups_with_mixed_labels": mixed_label_groups,
            "pairs_within_threshold": int(len(ii)),
        },
        "counts": {
            s: {classes[c]: int(sum(1 for i in members[s] if items[i]["label"] == c)) for c in range(len(classes))}
            | {"total": len(members[s])}
            for s in SPLITS
        },
        "splits": {
            s: [
                {"path": items[i]["path"], "sha256": items[i]["sha256"], "label": items[i]["label"]}
                for i in sorted(members[s], key=lambda i: items[i]["path"])
            ]
            for s in SPLITS
        },
    }
    return split


def write_split(split: dict, path: str | Path) -> str:
    text = json.dumps(split, indent=1) + "\n"
    Path(path).write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def split_indices(split: dict, cache: Cache) -> dict[str, np.ndarray]:
    """Maps the split's (path, sha256) entries to indices of this cache; fails loudly on drift."""
    by_path = {it["path"]: it for it in cache.items}
    out = {}
    for s in SPLITS:
        idx = []
        for e in split["splits"][s]:
            it = by_path.get(e["path"])
            if it is None:
                raise ValueError(f"split entry {e['path']} is not in the cache {cache.root}")
            if it["sha256"] != e["sha256"]:
                raise ValueError(f"{e['path']}: sha256 in cache differs from split.json")
            idx.append(it["index"])
        out[s] = np.array(idx, dtype=np.int64)
    return out
