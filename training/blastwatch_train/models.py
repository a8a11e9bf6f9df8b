"""Model variants behind one two-input interface.

Every variant takes `original` and `segmented` (float32 NCHW in [0, 1], 224x224) and returns
logits; the export wrapper adds the softmax. The network first average-pools 2x (so the
convolutions run at `compute_size` px, about 4x cheaper on a 2-core CPU) and normalises
inside the graph, so the daemon only has to divide bytes by 255.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models as tvm

VARIANTS = ("original", "segmented", "early", "late")
BACKBONES = ("mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large", "mnasnet")

# Per-channel statistics of blood-smear pixels are far from ImageNet's; a fixed centre/scale
# is enough because BatchNorm follows the stem. Kept as buffers so ONNX carries them.
_MEAN = 0.5
_STD = 0.25


def _backbone(name: str, width: float, in_channels: int) -> tuple[nn.Module, int]:
    """Returns (feature extractor producing N x C x h x w, C) for a torchvision builder."""
    if name == "mobilenet_v2":
        net = tvm.mobilenet_v2(weights=None, width_mult=width)
        stem = net.features[0][0]
        feats, channels = net.features, net.last_channel
    elif name == "efficientnet_b0":
        if width != 1.0:
            raise ValueError("efficientnet_b0 is only built at width 1.0 by torchvision")
        net = tvm.efficientnet_b0(weights=None)
        stem = net.features[0][0]
        feats, channels = net.features, net.classifier[1].in_features
    elif name == "mobilenet_v3_large":
        net = tvm.mobilenet_v3_large(weights=None, width_mult=width)
        stem = net.features[0][0]
        feats, channels = net.features, net.classifier[0].in_features
    elif name == "mnasnet":
        builders = {0.5: tvm.mnasnet0_5, 0.75: tvm.mnasnet0_75, 1.0: tvm.mnasnet1_0}
        if width not in builders:
            raise ValueError(f"mnasnet widths: {sorted(builders)}")
        net = builders[width](weights=None)
        stem = net.layers[0]
        feats, channels = net.layers, 1280
    else:
        raise ValueError(f"unknown backbone {name!r}; one of {BACKBONES}")
    if in_channels != 3:
        new = nn.Conv2d(
            in_channels,
            stem.out_channels,
            kernel_size=stem.kernel_size,
            stride=stem.stride,
            padding=stem.padding,
            bias=stem.bias is not None,
        )
        _replace_module(feats, stem, new)
    return feats, channels


def _replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for name, child in root.named_children():
        if child is old:
            setattr(root, name, new)
            return
        _replace_module(child, old, new)


class BlastNet(nn.Module):
    def __init__(
        self,
        variant: str = "early",
        backbone: str = "mobilenet_v2",
        width: float = 1.0,
        compute_size: int = 112,
        input_size: int = 224,
        num_classes: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
        if input_size % compute_size != 0:
            raise ValueError("input_size must be a multiple of compute_size")
        self.variant = variant
        self.config = dict(
            variant=variant,
            backbone=backbone,
            width=width,
            compute_size=compute_size,
            input_size=input_size,
            num_classes=num_classes,
            dropout=dropout,
        )
        factor = input_size // compute_size
        self.downsample = nn.AvgPool2d(factor) if factor > 1 else nn.Identity()
        self.register_buffer("mean", torch.tensor(_MEAN))
        self.register_buffer("std", torch.tensor(_STD))
        in_ch = 6 if variant == "early" else 3
        self.branch_a, channels = _backbone(backbone, width, in_ch)
        self.branch_b = None
        if variant == "late":
            self.branch_b, channels_b = _backbone(backbone, width, 3)
            channels += channels_b
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def downsample_inputs(self, original: torch.Tensor, segmented: torch.Tensor):
        """The graph's first step; training augments after it (4x fewer pixels to touch)."""
        return self.downsample(original), self.downsample(segmented)

    def _features(self, branch: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(branch(x)), 1)

    def forward(self, original: torch.Tensor, segmented: torch.Tensor) -> torch.Tensor:
        return self.forward_downsampled(*self.downsample_inputs(original, segmented))

    def forward_downsampled(self, original: torch.Tensor, segmented: torch.Tensor) -> torch.Tensor:
        if self.variant == "original":
            f = self._features(self.branch_a, self._prep(original))
        elif self.variant == "segmented":
            f = self._features(self.branch_a, self._prep(segmented))
        elif self.variant == "early":
            f = self._features(self.branch_a, self._prep(torch.cat([original, segmented], 1)))
        else:
            assert self.branch_b is not None
            f = torch.cat(
                [
                    self._features(self.branch_a, self._prep(original)),
                    self._features(self.branch_b, self._prep(segmented)),
                ],
                1,
            )
        return self.head(f)


class WithSoftmax(nn.Module):
    """Export wrapper: the ONNX output `probabilities` is softmax(logits), uncalibrated;
    model.json's temperature T calibrates it as p_i^(1/T) / sum_j p_j^(1/T) == softmax(z/T)."""

    def __init__(self, net: BlastNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, original: torch.Tensor, segmented: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(original, segmented), dim=1)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
