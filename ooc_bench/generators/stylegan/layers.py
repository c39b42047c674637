"""StyleGAN2 building blocks in plain PyTorch: equalised-lr layers, FIR resampling, modulated convolution."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)  # leaky ReLU gain, folded into the weights of the layer before it


def fir_kernel(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0), gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D low-pass FIR kernel (outer product of ``taps``), normalised to sum ``gain``."""
    f = torch.tensor(taps, dtype=torch.float32)
    k = f[:, None] * f[None, :]
    return k / k.sum() * gain


def _depthwise(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return k.to(x.dtype)[None, None].expand(c, 1, *k.shape)


def blur(x: torch.Tensor, k: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Depthwise FIR filtering with (before, after) zero padding on both axes."""
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, _depthwise(x, k), groups=x.shape[1])


def upsample2d(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion + FIR low-pass (gain 4), done as one depthwise transposed conv."""
    return F.conv_transpose2d(x, _depthwise(x, k * 4), stride=2, padding=1, groups=x.shape[1])


def downsample2d(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """2x downsampling: FIR low-pass then decimation, done as one depthwise strided conv."""
    return F.conv2d(x, _depthwise(x, k), stride=2, padding=1, groups=x.shape[1])


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights ~ N(0, 1/lr_mul), scaled at runtime)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act_gain = LRELU_GAIN if self.activation else 1.0  # lrelu(x) * g == lrelu(x * g): fold g into w and b
        w = self.weight.to(x.dtype) * (self.weight_gain * act_gain)
        b = self.bias.to(x.dtype) * (self.bias_gain * act_gain) if self.bias is not None else None
        x = F.linear(x, w, b)
        return F.leaky_relu(x, 0.2) if self.activation else x


class EqualConv2d(nn.Module):
    """Conv layer with equalised learning rate; optional FIR 2x downsampling (discriminator).

    Down-sampling follows NVlabs' ``conv2d_resample``: a k x k conv (k > 1) low-passes the input at full
    resolution with zero padding ``k // 2 + 1`` on each side (2 for 3x3) and then runs a stride-2 conv without
    padding; a 1x1 conv low-passes and decimates first (padding 1) and then convolves at half resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = False, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation
        self.down = down
        self.padding = kernel_size // 2
        self.register_buffer("kernel", fir_kernel(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act_gain = LRELU_GAIN if self.activation else 1.0  # folded into w and b (lrelu is positively homogeneous)
        w = self.weight.to(x.dtype) * (self.weight_gain * act_gain)
        b = self.bias.to(x.dtype) * act_gain if self.bias is not None else None
        if self.down and self.padding > 0:  # filter at full resolution (pad k//2 + 1), then a stride-2 conv
            x = blur(x, self.kernel, (self.padding + 1, self.padding + 1))
            x = F.conv2d(x, w, b, stride=2)
        else:
            if self.down:  # 1x1: decimate first, then convolve at half resolution (same result, 4x cheaper)
                x = downsample2d(x, self.kernel)
            x = F.conv2d(x, w, b, padding=self.padding)
        return F.leaky_relu(x, 0.2) if self.activation else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, fused: bool = True, kernel: torch.Tensor | None = None,
                     gain: float = 1.0) -> torch.Tensor:
    """StyleGAN2 modulated (and demodulated) convolution.

    ``x``: (N, I, H, W); ``weight``: (O, I, k, k), already scaled for equalised lr; ``styles``: (N, I).
    ``fused=True`` folds the per-sample weights into one grouped convolution (groups = N);
    ``fused=False`` scales the activations instead and runs one ordinary convolution (same maths).
    ``up=True`` doubles the resolution with a stride-2 transposed conv followed by an FIR blur.
    ``gain`` scales the output (folded into the demodulation coefficients).
    """
    n, in_ch, h, w_ = x.shape
    out_ch, _, kh, kw = weight.shape
    weight = weight.to(x.dtype)
    styles = styles.to(x.dtype)
    pad = kh // 2
    if not fused:
        dcoefs = None
        if demodulate:
            # sum_{i,k} (w_oik * s_i)^2 = (w^2 summed over k) @ s^2
            dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8) * gain  # (N, O)
        elif gain != 1.0:
            dcoefs = torch.full((n, out_ch), gain, dtype=x.dtype, device=x.device)
        x = x * styles[:, :, None, None]
        if up:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = blur(x, kernel * 4, (1, 1))
        else:
            x = F.conv2d(x, weight, padding=pad)
        if dcoefs is not None:
            x = x * dcoefs[:, :, None, None]
        return x
    wts = weight[None] * styles[:, None, :, None, None]  # (N, O, I, k, k)
    if demodulate:
        wts = wts * (torch.rsqrt(wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8) * gain)
    elif gain != 1.0:
        wts = wts * gain
    x = x.reshape(1, n * in_ch, h, w_)
    if up:
        wts = wts.transpose(1, 2).reshape(n * in_ch, out_ch, kh, kw)
        x = F.conv_transpose2d(x, wts, stride=2, groups=n)
        x = blur(x, kernel * 4, (1, 1))
    else:
        x = F.conv2d(x, wts.reshape(n * out_ch, in_ch, kh, kw), padding=pad, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])
