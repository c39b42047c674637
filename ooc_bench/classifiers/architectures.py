"""Build a classifier architecture with random weights by name: the small from-scratch CNN or any timm model."""

from __future__ import annotations

from typing import Any

CNN_NAME = "cnn"
TIMM_NAMES = {CNN_NAME: "ooc_cnn"}  # ooc-bench's own architectures, as registered in timm's registry


def _timm():
    import timm

    return timm


def build_architecture(timm_name: str, num_classes: int, in_chans: int = 3, drop_rate: float | None = None,
                       **timm_kwargs: Any):
    """Instantiate an architecture with random weights (on the current default device, e.g. ``meta``).

    Every architecture comes from timm's registry; the small CNN is registered there as ``ooc_cnn``
    (classifiers/cnn.py) and keeps its alias name ``cnn`` in checkpoints and records.
    """
    kwargs = dict(num_classes=num_classes, in_chans=in_chans)
    if drop_rate is not None:
        kwargs["drop_rate"] = drop_rate
    if timm_name in TIMM_NAMES:
        from . import cnn  # noqa: F401 - registers ooc_cnn with timm
    else:
        kwargs.update(timm_kwargs)
    return _timm().create_model(TIMM_NAMES.get(timm_name, timm_name), pretrained=False, **kwargs)
