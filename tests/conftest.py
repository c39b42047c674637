"""Test-wide settings (offline hub, a private cache folder, one torch thread) and fixtures shared by several areas."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OOC_BENCH_TEST", "1")
# Tiny test models are dispatch-bound: one thread is several times faster than two on a 2-core machine.
# Matrix jobs (also in worker processes) read the same setting, so all executors give identical numbers.
os.environ["OOC_BENCH_THREADS"] = "1"

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session uses its own ooc-bench cache folder."""
    os.environ["OOC_BENCH_CACHE"] = str(tmp_path_factory.mktemp("ooc-cache"))
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A small built-in demo dataset in the OOC layout (generated once per test session)."""
    from ooc_bench.data import make_demo

    root = tmp_path_factory.mktemp("demo") / "ooc_demo"
    make_demo(root, seed=0, n_images=160, size=64)
    return root


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A tiny random SD-1.5-shaped diffusers folder (32 px), built once per test session."""
    from ooc_bench.testing.tiny_sd import make_tiny_sd_pipeline

    return make_tiny_sd_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipe")


@pytest.fixture()
def decode_spy(monkeypatch):
    """The refs passed to ``ooc_bench.data.decode.decode_image`` during the test, in call order (it still decodes)."""
    from ooc_bench.data import decode

    calls: list[str] = []
    real = decode.decode_image

    def spy(ref):
        calls.append(str(ref))
        return real(ref)

    monkeypatch.setattr(decode, "decode_image", spy)
    return calls
