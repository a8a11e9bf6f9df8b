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
BACKBONES = ("mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large", "mnasnet", "resnet10", "resnet18")
# BasicBlocks per stage: ResNet-18's layout and its one-block-per-stage "ResNet-10" cut.
_RESNET_BLOCKS = {"resnet10": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2)}
RESNET_BACKBONES = tuple(_RESNET_BLOCKS)

# Per-channel statistics of blood-smear pixels are far from ImageNet's; a fixed centre/scale
# is enough because BatchNorm follows the stem. Kept as buffers so ONNX carries them.
_MEAN = 0.5
_STD = 0.25


def _resnet(width: float, in_channels: int, blocks: tuple[int, ...]) -> tuple[nn.Module, int]:
    """A ResNet layout of torchvision's BasicBlock (`blocks` per stage) at `width` x its channels.

    Every convolution is dense, which is what int8 kernels speed up on CPUs without int8 dot
    products (AVX2, Cortex-A72): a depthwise convolution has too little arithmetic per byte to
    gain from it. The stem is a 2x2 stride-2 patch convolution (after the 2x input pool, export
    folds both into one 4x4 stride-4 convolution on the 224-px input: fold_downsample_into_stem)
    and every stage halves the map, so a 112-px input ends at 4x4 like MobileNetV2's. The last
    BatchNorm of each block starts at zero (torchvision's `zero_init_residual`), so an untrained
    block is the identity: this trains stably from scratch.
    """
    from torchvision.models.resnet import BasicBlock, conv1x1

    widths = [max(8, int(round(64 * width))) * m for m in (1, 2, 4, 8)]
    layers: list[nn.Module] = [
        nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 2, 2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
    ]
    c = widths[0]
    for w, n in zip(widths, blocks):
        for b in range(n):
            stride = 2 if b == 0 else 1
            down = None
            if stride != 1 or c != w:
                down = nn.Sequential(conv1x1(c, w, stride), nn.BatchNorm2d(w))
            block = BasicBlock(c, w, stride, down)
            nn.init.kaiming_normal_(block.conv1.weight, mode="fan_out", nonlinearity="relu")
            nn.init.kaiming_normal_(block.conv2.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(block.bn2.weight)
            layers.append(block)
            c = w
    return nn.Sequential(*layers), c


def _backbone(name: str, width: float, in_channels: int) -> tuple[nn.Module, int]:
    """Returns (feature extractor producing N x C x h x w, C) for a torchvision builder."""
    if name in _RESNET_BLOCKS:
        return _resnet(width, in_channels, _RESNET_BLOCKS[name])
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
        # The mobile nets were trained on centred inputs. The ResNet takes [0, 1] as it comes (the
        # BatchNorm after its stem does the centring), which is what lets export fold the pool
        # into the stem exactly (fold_downsample_into_stem).
        self.normalize = backbone not in RESNET_BACKBONES
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
        return (x - self.mean) / self.std if self.normalize else x

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


def fold_downsample_into_stem(net: BlastNet) -> bool:
    """Replaces the input average pool and the stem convolution by one equivalent convolution.

    An f x f average pool followed by a k x k convolution with stride s and padding p equals one
    (f*k) x (f*k) convolution with stride f*s and padding f*p whose weights are the old ones
    repeated over each f x f cell and divided by f^2 (both are linear; a zero-padded pixel of the
    pooled image is the pool of zero-padded pixels). Training keeps the pool (augmentation then
    touches 4x fewer pixels); the exported graph starts with a convolution, which onnxruntime runs
    in int8 on the quantised input, where a float pool before the first QuantizeLinear costs as
    much in the INT8 model as in the FP32 one. Only for early fusion without in-graph
    normalisation (a Sub/Div between pool and stem would break the identity at the padding).
    Returns whether it folded; the network is changed in place.
    """
    if net.variant != "early" or net.normalize or isinstance(net.downsample, nn.Identity):
        return False
    pool = net.downsample
    f = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    stem = next(m for m in net.branch_a.modules() if isinstance(m, nn.Conv2d))
    k, s, p = stem.kernel_size[0], stem.stride[0], stem.padding[0]
    folded = nn.Conv2d(stem.in_channels, stem.out_channels, f * k, f * s, f * p, bias=stem.bias is not None)
    with torch.no_grad():
        w = stem.weight.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3) / (f * f)
        folded.weight.copy_(w)
        if stem.bias is not None:
            folded.bias.copy_(stem.bias)
    _replace_module(net.branch_a, stem, folded)
    net.downsample = nn.Identity()
    return True


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
