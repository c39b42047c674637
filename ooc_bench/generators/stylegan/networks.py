"""StyleGAN2 networks: mapping network, skip-architecture synthesis network, residual projection discriminator."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import torch.nn.functional as F

from .layers import LRELU_GAIN, EqualConv2d, EqualLinear, fir_kernel, modulated_conv2d, upsample2d

def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Number of feature maps at resolution ``res``."""
    return max(1, min(channel_base // res, channel_max))


def check_resolution(res: int) -> int:
    """Validate a power-of-two resolution in 32 ... 1024 (smaller powers of two >= 8 are allowed for tests)."""
    if res < 8 or res > 1024 or (res & (res - 1)) != 0:
        raise ValueError(f"resolution must be a power of two between 32 and 1024, got {res}")
    return res


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (and class one-hot) -> w, broadcast to ``num_ws`` style vectors; tracks the w average for truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        self.embed = EqualLinear(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(features[i], features[i + 1], lr_mul=lr_mul, activation=True)
                                    for i in range(num_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1.0,
                update_emas: bool = False, w_center: torch.Tensor | None = None) -> torch.Tensor:
        """``ws`` (N, num_ws, w_dim); truncation pulls towards ``w_center`` ((w_dim,) or one per sample, (N, w_dim);
        default: the tracked w average)."""
        x = normalize_2nd_moment(z.float())
        if self.embed is not None:
            if c is None:
                raise ValueError("conditional mapping network needs a class label c")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.float()))], dim=1)
        for layer in self.layers:
            x = layer(x)
        if update_emas:
            self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = x[:, None, :].repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            center = self.w_avg if w_center is None else w_center
            ws = center.to(ws.dtype).reshape(-1, 1, self.w_dim).lerp(ws, truncation_psi)
        return ws


class StyleConv(nn.Module):
    """Modulated 3x3 conv + per-pixel noise + bias + lrelu; optional 2x upsampling."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.weight_gain = 1.0 / math.sqrt(in_ch * 9)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("kernel", fir_kernel(), persistent=False)
        self.up, self.resolution = up, resolution

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | str = "random",
                fused: bool = True) -> torch.Tensor:
        # lrelu(y) * sqrt(2) == lrelu(y * sqrt(2)): the gain is folded into demodulation, noise and bias
        g = LRELU_GAIN
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight * self.weight_gain, styles, demodulate=True, up=self.up,
                             fused=fused, kernel=self.kernel, gain=g)
        strength = self.noise_strength.to(x.dtype) * g
        bias = self.bias.to(x.dtype)[:, None, None] * g
        if isinstance(noise, torch.Tensor):
            x = torch.addcmul(x, noise.to(x.dtype), strength) + bias
        elif noise == "random":
            nz = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = torch.addcmul(x, nz, strength) + bias
        elif noise == "const":
            x = x + (self.noise_const.to(x.dtype)[None] * strength + bias)
        else:
            x = x + bias
        return F.leaky_relu(x, 0.2)


class ToRGB(nn.Module):
    """Modulated 1x1 conv (no demodulation) to RGB."""

    def __init__(self, in_ch: int, w_dim: int, out_ch: int = 3) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.weight_gain = 1.0 / math.sqrt(in_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return x + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """Learned 4x4 constant -> modulated conv blocks up to ``resolution``; RGB outputs summed across scales (skip)."""

    def __init__(self, w_dim: int, resolution: int, channel_base: int, channel_max: int, img_channels: int = 3) -> None:
        super().__init__()
        self.resolution = check_resolution(resolution)
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        ch = {r: channels_at(r, channel_base, channel_max) for r in self.resolutions}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.convs = nn.ModuleList()
        self.torgbs = nn.ModuleList()
        for r in self.resolutions:
            if r > 4:
                self.convs.append(StyleConv(ch[r // 2], ch[r], w_dim, r, up=True))
            self.convs.append(StyleConv(ch[r], ch[r], w_dim, r))
            self.torgbs.append(ToRGB(ch[r], w_dim, img_channels))
        self.num_ws = 2 * len(self.resolutions)  # every conv has its own w; each toRGB shares the next conv's w
        self.register_buffer("kernel", fir_kernel(), persistent=False)

    def noise_shapes(self) -> list[int]:
        """Spatial size of each conv layer's noise input, in layer order."""
        return [c.resolution for c in self.convs]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", noise: list[torch.Tensor] | None = None,
                fused: bool = True) -> torch.Tensor:
        x = self.const.to(ws.dtype)[None].repeat(ws.shape[0], 1, 1, 1)
        img = None
        li = 0  # conv layer index; conv li uses ws[:, li]
        for bi, _ in enumerate(self.resolutions):
            for _ in range(1 if bi == 0 else 2):
                nz = noise[li] if noise is not None else noise_mode
                x = self.convs[li](x, ws[:, li], nz, fused=fused)
                li += 1
            y = self.torgbs[bi](x, ws[:, li], fused=fused)
            img = y if img is None else upsample2d(img, self.kernel) + y
        return img


class Generator(nn.Module):
    """Mapping + synthesis network: ``G(z, c) -> images in [-1, 1]`` (N, 3, R, R)."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, resolution: int = 64,
                 channel_base: int = 16384, channel_max: int = 512, mapping_layers: int = 8,
                 mapping_lr_mul: float = 0.01, fused_modconv: bool = True) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.resolution = z_dim, c_dim, w_dim, resolution
        self.fused_modconv = fused_modconv
        self.synthesis = SynthesisNetwork(w_dim, resolution, channel_base, channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_mul)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1.0,
                noise_mode: str = "random", update_emas: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, fused=self.fused_modconv)


def minibatch_std(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """Append the per-group standard deviation across the minibatch as extra feature maps."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    f = num_channels
    y = x.float().reshape(g, -1, f, c // f, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (n/g, f)
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (second one downsamples) plus a 1x1 downsampling skip, scaled by sqrt(1/2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, activation=True)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (x + y) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """Residual discriminator with minibatch-stddev; class projection (w . embed(c)) when ``c_dim > 0``."""

    def __init__(self, c_dim: int = 0, resolution: int = 64, channel_base: int = 16384, channel_max: int = 512,
                 img_channels: int = 3, mbstd_group: int = 4, cmap_dim: int | None = None) -> None:
        super().__init__()
        check_resolution(resolution)
        self.c_dim, self.resolution = c_dim, resolution
        res_list = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]  # R ... 8
        ch = {r: channels_at(r, channel_base, channel_max) for r in res_list + [4]}
        self.from_rgb = EqualConv2d(img_channels, ch[resolution], 1, activation=True)
        self.blocks = nn.ModuleList(DiscriminatorBlock(ch[r], ch[r // 2]) for r in res_list)
        self.mbstd_group = mbstd_group
        c4 = ch[4]
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation=True)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.cmap_dim = (cmap_dim or c4) if c_dim > 0 else 0
        self.out = EqualLinear(c4, self.cmap_dim if c_dim > 0 else 1)
        if c_dim > 0:
            self.c_embed = nn.Sequential(EqualLinear(c_dim, self.cmap_dim, activation=True),
                                         EqualLinear(self.cmap_dim, self.cmap_dim))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.from_rgb(img)
        for block in self.blocks:
            x = block(x)
        x = minibatch_std(x, self.mbstd_group)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.c_dim > 0:
            if c is None:
                raise ValueError("conditional discriminator needs a class label c")
            cmap = self.c_embed(c.to(x.dtype))
            x = (x * cmap).sum(dim=1, keepdim=True) / np.sqrt(self.cmap_dim)
        return x
