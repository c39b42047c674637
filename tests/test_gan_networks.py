"""StyleGAN2 networks: output shapes, demodulation statistics, fused == non-fused modulation, class projection."""

import pytest
import torch

from ooc_bench.generators.stylegan.layers import fir_kernel, modulated_conv2d
from ooc_bench.generators.stylegan.networks import Discriminator, Generator

TINY = dict(channel_base=256, channel_max=16)


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes_at_several_resolutions(res):
    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=16, c_dim=3, resolution=res, mapping_layers=2, **TINY)
    D = Discriminator(c_dim=3, resolution=res, **TINY)
    z, c = torch.randn(4, 16), torch.eye(3)[[0, 1, 2, 0]]
    img = G(z, c)
    assert img.shape == (4, 3, res, res)
    assert G.num_ws == 2 * (res.bit_length() - 2)
    assert torch.isfinite(img).all()
    assert D(img, c).shape == (4, 1)


def test_unconditional_networks():
    G = Generator(z_dim=8, w_dim=8, c_dim=0, resolution=32, mapping_layers=1, **TINY)
    D = Discriminator(c_dim=0, resolution=32, **TINY)
    img = G(torch.randn(2, 8), None)
    assert D(img, None).shape == (2, 1)


@pytest.mark.parametrize("fused", [True, False])
def test_demodulation_keeps_unit_variance(fused):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 64, 24, 24, generator=g)
    w = torch.randn(48, 64, 1, 1, generator=g) * 3.0
    s = torch.randn(16, 64, generator=g) * 5.0 + 2.0  # badly scaled styles: demod must undo them
    y = modulated_conv2d(x, w, s, demodulate=True, fused=fused)
    assert y.shape == (16, 48, 24, 24)
    assert 0.9 < y.var().item() < 1.1
    per_sample = y.var(dim=[1, 2, 3])
    assert (per_sample > 0.8).all() and (per_sample < 1.2).all()
    y_raw = modulated_conv2d(x, w, s, demodulate=False, fused=fused)
    assert y_raw.var().item() > 10  # without demodulation the scale leaks through


@pytest.mark.parametrize("up", [False, True])
def test_fused_and_grouped_modulation_agree(up):
    g = torch.Generator().manual_seed(1)
    x, w, s = torch.randn(3, 8, 8, 8, generator=g), torch.randn(5, 8, 3, 3, generator=g), torch.randn(3, 8, generator=g)
    a = modulated_conv2d(x, w, s, up=up, fused=True, kernel=fir_kernel(), gain=1.5)
    b = modulated_conv2d(x, w, s, up=up, fused=False, kernel=fir_kernel(), gain=1.5)
    assert a.shape == b.shape == (3, 5, 16 if up else 8, 16 if up else 8)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_projection_discriminator_uses_the_class():
    torch.manual_seed(0)
    D = Discriminator(c_dim=4, resolution=32, **TINY)
    img = torch.randn(4, 3, 32, 32)
    out = torch.cat([D(img, torch.eye(4)[[k] * 4]) for k in range(4)], dim=1)
    assert out.std(dim=1).min() > 1e-4  # same images, different classes -> different logits


def test_truncation_pulls_towards_the_average():
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, c_dim=0, resolution=32, mapping_layers=2, **TINY)
    G.mapping.w_avg.fill_(0.5)
    z = torch.randn(3, 8)
    ws1 = G.mapping(z, None)
    ws0 = G.mapping(z, None, truncation_psi=0.0)
    torch.testing.assert_close(ws0, torch.full_like(ws0, 0.5))
    half = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(half, 0.5 * (ws1 + 0.5))
