"""Seeded augmentation for what a microscope varies between sessions and sites.

Exposure, contrast, stain saturation, hue, per-channel gains (white balance) and colour
temperature (red up, blue down, or the opposite) are all per-pixel affine colour maps, so they
are composed into one 3x3 matrix + offset per image (one batched matmul); then gamma, defocus
blur and JPEG re-encoding. Magnification (another objective or camera adapter) zooms both inputs
alike: the centre enlarged, or the field shrunk and padded by mirroring its edges. The transform is computed on the original image; the segmented input is
rebuilt as augmented original x foreground mask, so both inputs see the same change. Flips and
90-degree rotations act on both.

Training augments after the network's fixed 2x average pool (see BlastNet.downsample_inputs):
4x fewer pixels. Affine colour maps commute exactly with average pooling; blur sigma is given in
224-px units and halved; JPEG is applied at the pooled size (slightly coarser artefacts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.io import decode_jpeg, encode_jpeg

_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass
class AugmentConfig:
    brightness: float = 0.15  # exposure factor in [1-b, 1+b]
    contrast: float = 0.15
    gamma: float = 0.15
    saturation: float = 0.2
    hue_degrees: float = 15.0
    blur_prob: float = 0.25
    blur_sigma: tuple[float, float] = (0.5, 2.0)  # in 224-px pixels
    jpeg_prob: float = 0.25
    jpeg_quality: tuple[int, int] = (60, 95)
    geometric: bool = True
    # Another camera: each channel x U(1-g, 1+g) on its own (white balance) ...
    channel_gain: float = 0.0
    # ... and a colour temperature t ~ U(-T, T): red x (1+t), blue x (1-t) (warm lamp t > 0).
    temperature: float = 0.0
    # Zoom factor range (1 = off) and the share of images zoomed: > 1 crops, < 1 shrinks and pads.
    magnification: tuple[float, float] = (1.0, 1.0)
    magnification_prob: float = 0.0
    # A brighter lamp or longer exposure: on this share of the images, every pixel x U(1, 1 + o)
    # and clipped at white as the sensor clips, before any other change. The colour normalisation
    # undoes a darker exposure, but nothing brings back the highlights a brighter one clipped.
    overexposure: float = 0.0
    overexposure_prob: float = 0.0


# What another camera or lamp does, over the ranges blastwatch is checked against
# (scripts/robustness.ts): per-channel gains 0.85-1.15, warm/cool white balance, gamma 0.8-1.25,
# hue +-15 degrees, saturation x0.7-1.3, magnification x0.75-1.25.
CAMERA_SHIFTS = dict(channel_gain=0.15, temperature=0.1, gamma=0.25, hue_degrees=15.0, saturation=0.3,
                     magnification=(0.75, 1.25), magnification_prob=0.5)


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def hue_rotation(deg: torch.Tensor) -> torch.Tensor:
    """N x 3 x 3 RGB matrices rotating hue about the grey axis (rotation in YIQ's IQ plane)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    rad = deg * math.pi / 180
    c, s = torch.cos(rad), torch.sin(rad)
    rot = torch.zeros(len(deg), 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return from_yiq @ rot @ to_yiq


def colour_affine(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (M: N x 3 x 3, b: N x 3) so that x' = M x + b does exposure, saturation, hue, contrast."""
    n = x.shape[0]
    eye = torch.eye(3).expand(n, 3, 3)
    sat = _u(g, n, 1 - cfg.saturation, 1 + cfg.saturation).view(n, 1, 1)
    grey_proj = torch.ones(3, 1) @ _LUMA.view(1, 3)  # every channel <- luma
    m = sat * eye + (1 - sat) * grey_proj
    m = hue_rotation(_u(g, n, -cfg.hue_degrees, cfg.hue_degrees)) @ m
    m = _u(g, n, 1 - cfg.brightness, 1 + cfg.brightness).view(n, 1, 1) * m
    if cfg.channel_gain > 0 or cfg.temperature > 0:
        gains = _u(g, 3 * n, 1 - cfg.channel_gain, 1 + cfg.channel_gain).view(n, 3)
        t = _u(g, n, -cfg.temperature, cfg.temperature)
        gains = gains * torch.stack([1 + t, torch.ones(n), 1 - t], dim=1)
        m = torch.diag_embed(gains) @ m
    # contrast about the image's mean grey level after the colour map: c*(y - mu) + mu
    c = _u(g, n, 1 - cfg.contrast, 1 + cfg.contrast).view(n, 1)
    mean_rgb = x.mean(dim=(2, 3))  # N x 3
    mu = ((m @ mean_rgb.unsqueeze(2)).squeeze(2) * _LUMA).sum(1, keepdim=True)  # N x 1
    return c.unsqueeze(2) * m, ((1 - c) * mu).expand(n, 3)


def photometric(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator, pixel_scale: float = 1.0) -> torch.Tensor:
    """x: float N x 3 x H x W in [0, 1]. pixel_scale: 224-px pixels per pixel of x (for blur)."""
    n, _, h, w = x.shape
    if cfg.overexposure_prob > 0:  # draws nothing otherwise: earlier recipes stay reproducible
        pick = torch.rand(n, generator=g) < cfg.overexposure_prob
        factor = torch.where(pick, _u(g, n, 1.0, 1.0 + cfg.overexposure), torch.ones(n))
        x = (x * factor.view(n, 1, 1, 1)).clamp_(0, 1)
    m, b = colour_affine(x, cfg, g)
    x = torch.baddbmm(b.unsqueeze(2), m, x.reshape(n, 3, h * w)).view(n, 3, h, w).clamp_(0, 1)
    gam = _u(g, n, 1 - cfg.gamma, 1 + cfg.gamma).view(n, 1, 1, 1)
    x = x.pow_(gam)
    blur = (torch.rand(n, generator=g) < cfg.blur_prob).tolist()
    sig = _u(g, n, *cfg.blur_sigma).tolist()
    jpeg = (torch.rand(n, generator=g) < cfg.jpeg_prob).tolist()
    qual = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (n,), generator=g).tolist()
    sel = [i for i in range(n) if blur[i]]
    if sel:
        x[sel] = gaussian_blur_batch(x[sel], torch.tensor([sig[i] / pixel_scale for i in sel]))
    for i in range(n):
        if jpeg[i]:
            u8 = (x[i] * 255).round_().to(torch.uint8)
            x[i] = decode_jpeg(encode_jpeg(u8, quality=qual[i])).float() / 255
    return x


def gaussian_blur_batch(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a different sigma per image, as two grouped convolutions."""
    n, c, h, w = x.shape
    radius = max(1, math.ceil(2.5 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c) x K
    y = torch.nn.functional.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def magnify(tensors: list[torch.Tensor], factors: list[float]) -> list[torch.Tensor]:
    """Zooms sample i of every tensor by factors[i] about the centre, keeping the size: > 1 enlarges
    the central 1/factor of the field, < 1 shrinks the field and fills the border by mirroring."""
    out = [t.clone() for t in tensors]
    h, w = tensors[0].shape[-2:]
    for i, f in enumerate(factors):
        if f == 1.0:
            continue
        for t in out:
            x = t[i:i + 1]
            if f > 1:
                ch, cw = max(1, round(h / f)), max(1, round(w / f))
                top, left = (h - ch) // 2, (w - cw) // 2
                x = torch.nn.functional.interpolate(x[..., top:top + ch, left:left + cw], size=(h, w),
                                                    mode="bilinear", align_corners=False)
            else:
                sh, sw = max(1, round(h * f)), max(1, round(w * f))
                x = torch.nn.functional.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False,
                                                    antialias=True)
                top, left = (h - sh) // 2, (w - sw) // 2
                x = torch.nn.functional.pad(x, (left, w - sw - left, top, h - sh - top), mode="reflect")
            t[i] = x[0]
    return out


def geometric(tensors: list[torch.Tensor], g: torch.Generator) -> list[torch.Tensor]:
    """Same random flip / 90-degree rotation per sample for every tensor in the list."""
    n = tensors[0].shape[0]
    flip = (torch.rand(n, generator=g) < 0.5).tolist()
    rot = torch.randint(0, 4, (n,), generator=g).tolist()
    out = [t.clone() for t in tensors]
    for i in range(n):
        if not flip[i] and rot[i] == 0:
            continue
        for t in out:
            ti = t[i].flip(-1) if flip[i] else t[i]
            t[i] = torch.rot90(ti, rot[i], dims=(-2, -1))
    return out


def augment_pair(original: torch.Tensor, segmented: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                 pixel_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """original/segmented: float N x 3 x H x W in [0, 1] (possibly average-pooled). Returns
    augmented copies; the segmented one is augmented original x (soft, pooled) foreground mask."""
    with torch.no_grad():
        mask = (segmented.amax(dim=1, keepdim=True) > 0).to(original.dtype)
        # after pooling, a pixel's foreground share: segmented = original * share at boundaries
        if pixel_scale != 1.0:
            mask = ((segmented.sum(1, keepdim=True) / original.sum(1, keepdim=True).clamp_min(1e-6))
                    .clamp_(0, 1))
        if cfg.geometric:
            original, mask = geometric([original, mask], g)
        if cfg.magnification_prob > 0:
            n = original.shape[0]
            zoom = (torch.rand(n, generator=g) < cfg.magnification_prob).tolist()
            factor = _u(g, n, *cfg.magnification).tolist()
            original, mask = magnify([original, mask], [factor[i] if zoom[i] else 1.0 for i in range(n)])
        original = photometric(original, cfg, g, pixel_scale)
        return original, original * mask


def augment_mixed(original: torch.Tensor, segmented: torch.Tensor, base: AugmentConfig, shifted: AugmentConfig,
                  shifted_share: float, g: torch.Generator, pixel_scale: float = 1.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """augment_pair with `shifted` on a random share of the batch and `base` on the rest: the
    camera's shifts taught on some samples while the others keep the training camera's colours,
    which is what the clean test split and the training camera look like. A share of 1 (or 0) is
    augment_pair with one config and draws nothing more from g."""
    if shifted_share >= 1:
        return augment_pair(original, segmented, shifted, g, pixel_scale)
    if shifted_share <= 0:
        return augment_pair(original, segmented, base, g, pixel_scale)
    pick = torch.rand(original.shape[0], generator=g) < shifted_share
    out_o, out_s = torch.empty_like(original), torch.empty_like(segmented)  # every row is written below
    for cfg, rows in ((shifted, pick), (base, ~pick)):
        if rows.any():
            out_o[rows], out_s[rows] = augment_pair(original[rows], segmented[rows], cfg, g, pixel_scale)
    return out_o, out_s
