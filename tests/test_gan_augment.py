"""ADA: identity at p = 0, per-transform firing rate ~ p, differentiability, adaptive p controller."""

import pytest
import torch

from ooc_bench.generators.stylegan.augment import ALL_TRANSFORMS, AdaController, AugmentPipe, resolve_transforms


def test_p_zero_is_identity():
    x = torch.randn(8, 3, 16, 16)
    pipe = AugmentPipe("bgc", p=0.0)
    y = pipe(x)
    assert torch.equal(y, x)
    assert pipe.last_fired == {}


def test_images_where_nothing_fired_are_unchanged():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    pipe = AugmentPipe("bgc", p=0.1)
    y = pipe(x)
    fired = torch.stack([pipe.last_fired[t] for t in ALL_TRANSFORMS]).any(0)
    assert (~fired).sum() > 0
    assert torch.equal(y[~fired], x[~fired])
    assert not torch.allclose(y[fired], x[fired])


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_each_transform_fires_with_probability_p(p):
    torch.manual_seed(0)
    n = 4000
    pipe = AugmentPipe("bgc", p=p)
    pipe(torch.rand(n, 3, 8, 8) * 2 - 1)
    assert set(pipe.last_fired) == set(ALL_TRANSFORMS)
    for name, mask in pipe.last_fired.items():
        rate = mask.float().mean().item()
        assert abs(rate - p) < 0.04, (name, rate)


def test_xflip_only_pipeline_flips_or_keeps():
    torch.manual_seed(0)
    x = torch.randn(32, 3, 8, 8)
    pipe = AugmentPipe(["xflip"], p=1.0)
    y = pipe(x)
    for a, b in zip(x, y):
        assert torch.allclose(b, a, atol=1e-5) or torch.allclose(b, a.flip(-1), atol=1e-5)
    flipped = sum(not torch.allclose(b, a, atol=1e-5) for a, b in zip(x, y))
    assert 5 < flipped < 27


def test_integer_translation_moves_whole_pixels():
    torch.manual_seed(3)
    x = torch.rand(16, 3, 16, 16)
    y = AugmentPipe(["xint"], p=1.0)(x)
    # whole-pixel shifts with reflection: every output value is one of the input values (no interpolation)
    for a, b in zip(x, y):
        vals = a.flatten()
        assert torch.isclose(b.flatten()[:, None], vals[None], atol=1e-5).any(1).all()


def test_colour_transforms_keep_geometry_and_are_differentiable():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 8, 8, requires_grad=True)
    y = AugmentPipe("color", p=1.0)(x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    z = AugmentPipe("bg", p=1.0)(x)
    assert z.shape == x.shape


def test_unknown_transform_is_rejected():
    assert resolve_transforms("blit,color") == ("xflip", "rotate90", "xint") + resolve_transforms("color")
    with pytest.raises(ValueError, match="unknown augmentation"):
        resolve_transforms(["xflip", "cutout"])


def test_ada_raises_p_when_discriminator_overfits_and_lowers_it_otherwise():
    ada = AdaController(target=0.6, interval=4, ada_kimg=1.0, batch_size=32)
    step = 32 * 4 / 1000
    overfit = torch.full((32, 1), 3.0)  # D confidently positive on every real: r_t = 1 > 0.6
    history = []
    for _ in range(40):
        ada.accumulate(overfit)
        history.append(ada.step())
    assert ada.rt == pytest.approx(1.0)
    assert history[3] == pytest.approx(step) and history[7] == pytest.approx(2 * step)
    assert all(b >= a for a, b in zip(history, history[1:]))
    assert ada.p == 1.0  # clamped
    healthy = torch.tensor([1.0] * 12 + [-1.0] * 20)[:, None]  # r_t = -0.25 < 0.6
    for _ in range(8):
        ada.accumulate(healthy)
        ada.step()
    assert ada.rt == pytest.approx(-0.25)
    assert ada.p == pytest.approx(1.0 - 2 * step)
    for _ in range(400):
        ada.accumulate(healthy)
        ada.step()
    assert ada.p == 0.0
    state = ada.state_dict()
    other = AdaController()
    other.load_state_dict(state)
    assert other.p == ada.p and other.rt == ada.rt
