"""Training loop (one model, one split), in the spirit of torchvision's reference train.py."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .augment import AugmentConfig, augment_mixed
from .cache import Cache, StainVariants, to_float
from .models import BlastNet


@dataclass
class TrainConfig:
    variant: str = "early"
    backbone: str = "mobilenet_v2"
    width: float = 1.0
    compute_size: int = 112
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.05
    seed: int = 0
    max_steps: int | None = None  # smoke mode: stop after this many optimizer steps
    stain_variants: int = 0  # re-stained copies per training image (recorded; set by the pipeline)
    # with stain variants: the probability a sample is the original image (the rest spread evenly
    # over the copies); None = uniform over original + copies
    original_share: float | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # another camera's shifts, on this share of the samples (the rest get `augment`); None = off
    camera_augment: AugmentConfig | None = None
    camera_share: float = 1.0


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed)


def sample_sources(n: int, n_variants: int, original_share: float | None, g: torch.Generator) -> np.ndarray:
    """Per sample: 0 = the original image, v = stain-variant set v (1..n_variants). With
    original_share None every source is equally likely; else the original has that probability and
    the copies share the rest evenly."""
    if original_share is None:
        return torch.randint(0, n_variants + 1, (n,), generator=g).numpy()
    copy = torch.rand(n, generator=g) >= original_share
    which = torch.randint(1, n_variants + 1, (n,), generator=g)
    return (which * copy).numpy()


@torch.no_grad()
def predict_logits(net: nn.Module, cache: Cache, indices: np.ndarray, batch: int = 64,
                   device: str = "cpu") -> np.ndarray:
    net.eval()
    out = []
    for start in range(0, len(indices), batch):
        o, s = cache.tensors(indices[start : start + batch])
        out.append(net(to_float(o).to(device), to_float(s).to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 4), dtype=np.float32)


def train(cfg: TrainConfig, cache: Cache, train_idx: np.ndarray, val_idx: np.ndarray,
          log_path: Path | None = None, variants: StainVariants | None = None,
          device: str = "cpu", init: BlastNet | None = None) -> tuple[BlastNet, dict]:
    """variants: re-stained, re-segmented copies of the training images; each sample of a batch
    comes from the original or one of the copies (cfg.original_share).

    device: where the network runs ("cuda" on a GPU). Sampling and augmentation stay on
    the CPU with the same seeded generator, so a GPU run sees the very batches a CPU run sees; only
    floating-point summation order differs. The returned network is on the CPU.

    init: a trained network to go on from (its weights are updated in place) instead of a new one."""
    g = seed_everything(cfg.seed)
    if init is None:
        init = BlastNet(cfg.variant, cfg.backbone, cfg.width, cfg.compute_size, input_size=cache.size)
    net = init.to(device)
    labels = torch.from_numpy(cache.labels)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    decay, no_decay = [], []
    for p in net.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history = []
    step = 0
    t0 = time.time()
    log = open(log_path, "a") if log_path else None
    for epoch in range(cfg.epochs):
        net.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        running, seen, correct = 0.0, 0, 0
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = np.sort(perm[b * cfg.batch_size : (b + 1) * cfg.batch_size])  # sorted: faster memmap reads
            if variants is not None and len(variants):
                choice = sample_sources(len(idx), len(variants), cfg.original_share, g)
                o, s = variants.tensors(cache, idx, choice)
            else:
                o, s = cache.tensors(idx)
            with torch.no_grad():
                # the byte -> float and 2x pool are the costliest CPU steps of a batch (~70 ms on
                # one core): on a GPU they run there, and only the pooled tensors come back
                o, s = net.downsample_inputs(to_float(o.to(device)), to_float(s.to(device)))
                o, s = o.cpu(), s.cpu()
            o, s = augment_mixed(o, s, cfg.augment, cfg.camera_augment or cfg.augment,
                                 cfg.camera_share if cfg.camera_augment else 0.0, g,
                                 pixel_scale=cache.size / cfg.compute_size)
            y = labels[idx].to(device)
            logits = net.forward_downsampled(o.to(device), s.to(device))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += float(loss) * len(idx)
            seen += len(idx)
            correct += int((logits.argmax(1) == y).sum())
            if step % 20 == 0:
                print(f"  step {step}/{total} loss {running / seen:.3f} acc {correct / seen:.3f} "
                      f"{time.time() - t0:.0f}s", flush=True)
        val_logits = predict_logits(net, cache, val_idx, device=device)
        val_acc = float((val_logits.argmax(1) == cache.labels[val_idx]).mean()) if len(val_idx) else float("nan")
        rec = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": running / max(1, seen),
            "train_acc": correct / max(1, seen),
            "val_acc": val_acc,
            "seconds": round(time.time() - t0, 1),
        }
        history.append(rec)
        line = json.dumps(rec)
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()
        if step >= total:
            break
    if log:
        log.close()
    info = {"config": asdict(cfg), "history": history, "seconds": round(time.time() - t0, 1), "steps": step,
            "device": device}
    return net.cpu(), info


def save_checkpoint(net: BlastNet, info: dict, path: Path) -> None:
    torch.save({"model_config": net.config, "state_dict": net.state_dict(), "info": info}, path)


def load_checkpoint(path: Path) -> tuple[BlastNet, dict]:
    ckpt = torch.load(path, map_location="cpu")
    cfg = ckpt["model_config"]
    net = BlastNet(cfg["variant"], cfg["backbone"], cfg["width"], cfg["compute_size"], cfg["input_size"],
                   cfg["num_classes"], cfg["dropout"])
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    return net, ckpt["info"]
