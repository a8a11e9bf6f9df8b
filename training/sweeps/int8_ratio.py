"""INT8/FP32 latency of candidate architectures, before training any of them.

Latency does not depend on what the weights learned, so each candidate is built untrained, given
BatchNorm statistics from 128 real cached images (and non-zero BatchNorm scales, as a trained net
has: a zero residual scale makes the exporter share all-zero weights between blocks, which
onnxruntime then runs as float), exported and quantized by the pipeline's own functions. Then
`scripts/int8-ratio.ts` times them in the daemon's runtime. Run from the repo root, CACHE being the
training cache that `training/reproduce.sh` builds (`blastwatch preprocess-dataset`):

    PYTHONPATH=training training/.venv/bin/python training/sweeps/int8_ratio.py /tmp/int8-ratio CACHE
    npx tsx scripts/int8-ratio.ts /tmp/int8-ratio
"""
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from blastwatch_train.cache import load_cache, to_float
from blastwatch_train.export import export_onnx, quantize_int8
from blastwatch_train.models import BlastNet, count_params

CANDIDATES = [
    ("mobilenet_v2", 0.5),
    ("resnet18", 0.5),
    ("resnet10", 0.5),
    ("resnet10", 0.625),
    ("resnet10", 0.75),
    ("resnet10", 0.875),
    ("resnet10", 1.0),
]


def main(out: Path, cache_dir: str) -> None:
    torch.manual_seed(0)
    cache = load_cache(cache_dir)
    idx = np.arange(0, len(cache), 13)[:128]
    out.mkdir(parents=True, exist_ok=True)
    for backbone, width in CANDIDATES:
        net = BlastNet("early", backbone, width, 112)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.1, 0.1)
                m.momentum = None  # cumulative average over the batches below
        net.train()
        with torch.no_grad():
            for s in range(0, len(idx), 32):
                o, sg = cache.tensors(idx[s:s + 32])
                net(to_float(o), to_float(sg))
        net.eval()
        stem = f"{backbone}-w{width}"
        fp32, int8 = out / f"{stem}.fp32.onnx", out / f"{stem}.int8.onnx"
        export_onnx(net, fp32)
        quantize_int8(fp32, int8, cache, idx[:64])
        print(f"{stem}: {count_params(net):,} params, INT8 {int8.stat().st_size / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: int8_ratio.py OUT_DIR CACHE_DIR")
    main(Path(sys.argv[1]), sys.argv[2])
