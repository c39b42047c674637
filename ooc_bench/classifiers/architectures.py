"""Build a classifier architecture with random weights by name: the small from-scratch CNN or any timm model."""

from __future__ import annotations

from typing import Any

CNN_NAME = "cnn"


def _timm():
    import timm

    return timm


def build_architecture(timm_name: str, num_classes: int, in_chans: int = 3, drop_rate: float | None = None,
                       **timm_kwargs: Any):
    """Instantiate an architecture with random weights (on the current default device, e.g. ``meta``)."""
    if timm_name == CNN_NAME:
        from .cnn import SmallCNN

        return SmallCNN(num_classes=num_classes, in_chans=in_chans, **({} if drop_rate is None else {"drop_rate": drop_rate}))
    kwargs = dict(num_classes=num_classes, in_chans=in_chans, **timm_kwargs)
    if drop_rate is not None:
        kwargs["drop_rate"] = drop_rate
    return _timm().create_model(timm_name, pretrained=False, **kwargs)
