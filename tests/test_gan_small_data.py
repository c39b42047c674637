"""StyleGAN2-ADA small-data fixes: NVlabs down-sampling order in D, anti-aliased geometric ADA, R1 gamma default."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ooc_bench.generators.stylegan.augment import AugmentPipe, halfband_filter, warp_antialiased
from ooc_bench.generators.stylegan.layers import EqualConv2d
from ooc_bench.generators.stylegan.loss import ada_r1_gamma, default_r1_gamma


def _fir4(channels: int) -> torch.Tensor:
    """[1, 3, 3, 1] outer product / 64 as a depthwise weight, built here independently of layers.fir_kernel."""
    k = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    return torch.tensor(k, dtype=torch.float32).expand(channels, 1, 4, 4)


def test_strided_3x3_conv_filters_at_full_resolution_then_convolves_with_stride_2():
    torch.manual_seed(0)
    conv = EqualConv2d(4, 5, 3, activation=False, down=True)
    x = torch.randn(2, 4, 16, 16)
    w = conv.weight * conv.weight_gain
    # NVlabs conv2d_resample (down=2, 3x3): upfirdn2d with padding 2 on every side, then a stride-2 conv
    ref = F.conv2d(F.conv2d(F.pad(x, (2, 2, 2, 2)), _fir4(4), groups=4), w, conv.bias, stride=2)
    out = conv(x)
    assert out.shape == (2, 5, 8, 8)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # the old order (decimate first, 3x3 conv at half resolution) is a different function
    old = F.conv2d(F.conv2d(F.pad(x, (1, 1, 1, 1)), _fir4(4), stride=2, groups=4), w, conv.bias, padding=1)
    assert (out - old).abs().max() > 0.1


def test_1x1_skip_conv_decimates_first():
    torch.manual_seed(1)
    conv = EqualConv2d(3, 6, 1, bias=False, down=True)
    x = torch.randn(2, 3, 8, 8)
    ref = F.conv2d(F.conv2d(F.pad(x, (1, 1, 1, 1)), _fir4(3), stride=2, groups=3), conv.weight * conv.weight_gain)
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)


def test_r1_gamma_default_has_a_floor_per_capacity_and_keeps_the_heuristic_at_high_resolution():
    assert ada_r1_gamma(16, 32) == pytest.approx(0.0016)
    assert default_r1_gamma(8, 32) == default_r1_gamma(64, 32) == default_r1_gamma(128, 32) == 0.2
    assert default_r1_gamma(64, 32, floor=3.2) == 3.2
    assert default_r1_gamma(256, 16) == pytest.approx(ada_r1_gamma(256, 16)) == pytest.approx(0.8192)
    from ooc_bench.generators import create_generator
    from ooc_bench.generators.stylegan.trainer import Trainer

    def gamma(**kw):
        return create_generator("gan", device="cpu", **kw).config["r1_gamma"]

    assert gamma(resolution=16, capacity="tiny") == 3.2  # the CPU preset's measured floor, resolved with the config
    assert gamma(resolution=16, capacity="small") == gamma(resolution=128, capacity="paper") == 0.2
    assert gamma(resolution=256, capacity="paper") == pytest.approx(0.8192)  # batch 16: NVlabs' heuristic
    assert gamma(resolution=512, capacity="tiny") == pytest.approx(ada_r1_gamma(512, 8))  # above the floor
    assert gamma(resolution=16, capacity="tiny", r1_gamma=0.05) == 0.05  # an explicit value wins
    gen = create_generator("gan", resolution=16, device="cpu", capacity="tiny")
    assert Trainer(gen.config, 2, torch.device("cpu")).r1_gamma == 3.2


def test_the_default_r1_gamma_is_part_of_the_cache_key(monkeypatch):
    """A fitted network trained under another default floor must not be reused: the resolved γ is hashed."""
    from ooc_bench.generators import create_generator
    from ooc_bench.generators.stylegan import generator

    before = create_generator("gan", resolution=16, device="cpu").config_hash
    assert create_generator("gan", resolution=16, device="cpu", r1_gamma=3.2).config_hash == before
    monkeypatch.setitem(generator._CAPACITY, "tiny", generator._CAPACITY["tiny"][:5] + (0.05,))
    assert create_generator("gan", resolution=16, device="cpu").config["r1_gamma"] == 0.05
    assert create_generator("gan", resolution=16, device="cpu").config_hash != before


def _fields(n: int, size: int, cutoff: float, seed: int) -> torch.Tensor:
    """Isotropic band-limited Gaussian fields: statistically invariant to rotation and translation."""
    g = torch.Generator().manual_seed(seed)
    f = torch.fft.fftfreq(size, dtype=torch.float64) * 2
    mask = ((f[:, None] ** 2 + f[None, :] ** 2).sqrt() < cutoff).double()
    x = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)) * mask).real
    return (x / x.std()).float()


def _band_power(x: torch.Tensor, lo: float, hi: float) -> float:
    grey = x.double().mean(1)
    s = grey.shape[-1]
    win = torch.hann_window(s, periodic=False, dtype=torch.float64)
    p = torch.fft.fft2(grey * win[:, None] * win[None, :]).abs().square()
    f = torch.fft.fftfreq(s, dtype=torch.float64) * 2
    r = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    return float(p[:, (r >= lo) & (r < hi)].mean())


def test_antialiased_rotation_keeps_the_spectrum_of_rotation_invariant_images():
    big = _fields(48, 48, 0.9, seed=0)
    crop = lambda t: t[:, :, 12:36, 12:36]  # noqa: E731
    ref = crop(_fields(48, 48, 0.9, seed=1))
    ratios = {}
    for aa in (False, True):
        torch.manual_seed(0)
        with torch.no_grad():
            aug = crop(AugmentPipe("rotate,xfrac", p=1.0, antialias=aa)(big))
        ratios[aa] = _band_power(aug, 0.5, 0.9) / _band_power(ref, 0.5, 0.9)
    # one bilinear grid_sample at the image's resolution loses about half the fine-detail power (a blur
    # the discriminator can see); resampling at 2x between low-pass filters keeps most of it
    assert ratios[False] < 0.6
    assert ratios[True] > 0.7 and ratios[True] - ratios[False] > 0.2


def test_antialiased_warp_is_aligned_and_pixel_permutations_stay_exact():
    smooth = F.interpolate(torch.randn(2, 3, 4, 4), size=16, mode="bicubic", align_corners=False)
    eye = torch.eye(3)[:2][None].repeat(2, 1, 1)
    shift = eye.clone()
    shift[:, 0, 2] = 2 / 16  # one pixel: output(x) = input(x + 1)
    out = warp_antialiased(smooth, shift, halfband_filter())
    inner = (slice(None), slice(None), slice(3, -3))
    assert (out[..., 3:-3, 3:-4] - smooth[..., 3:-3, 4:-3]).abs().max() < 0.05 * smooth.abs().max()
    assert out[inner].shape == smooth[inner].shape
    # flips, 90° turns and whole-pixel shifts do not go through the filters: exact copies of input values
    torch.manual_seed(2)
    x = torch.rand(8, 3, 16, 16)
    y = AugmentPipe("blit", p=1.0, antialias=True)(x)
    for a, b in zip(x, y):
        assert torch.isclose(b.flatten()[:, None], a.flatten()[None], atol=1e-5).any(1).all()


def test_antialiased_pipeline_is_differentiable_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    y = AugmentPipe("bgc", p=1.0)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert math.isfinite(float(x.grad.sum()))


def test_ada_antialias_setting_reaches_the_pipeline():
    from ooc_bench.generators import create_generator
    from ooc_bench.generators.stylegan.trainer import Trainer

    on = create_generator("gan", resolution=16, device="cpu")
    off = create_generator("gan", resolution=16, device="cpu", ada_antialias="false")
    assert Trainer(on.config, 2, torch.device("cpu")).augment.antialias is True
    assert Trainer(off.config, 2, torch.device("cpu")).augment.antialias is False
    assert on.config_hash != off.config_hash


def test_cpu_default_batch_is_8_up_to_32_px():
    from ooc_bench.generators import create_generator

    assert create_generator("gan", resolution=16, device="cpu").config["batch_size"] == 8
    assert create_generator("gan", resolution=32, device="cpu").config["batch_size"] == 8
    assert create_generator("gan", resolution=64, device="cpu").config["batch_size"] == 32
    assert create_generator("gan", resolution=16, device="cpu", batch_size=32).config["batch_size"] == 32
