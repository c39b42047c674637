"""`cnn`: a small from-scratch convolutional network with timm's interface, for quick CPU runs."""

from __future__ import annotations

import torch
from torch import nn

CNN_WIDTHS = (16, 32, 64, 128)

CNN_PRETRAINED_CFG: dict = {
    "architecture": "ooc_cnn",
    "input_size": (3, 64, 64),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "num_classes": 0,
    "first_conv": "stem.0",
    "classifier": "head",
}


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four conv blocks (3x3 conv + BN + ReLU, 16→128 channels, stride 2 after the first) → global average pool → dropout → linear.

    Follows timm's model interface (``forward_features``, ``forward_head(pre_logits=True)``, ``num_features``,
    ``get_classifier``, ``reset_classifier``, ``pretrained_cfg``, ``feature_info``) so every classifier is
    handled the same way (freezing, embedding, export).
    """

    def __init__(self, num_classes: int = 2, in_chans: int = 3, widths: tuple[int, ...] = CNN_WIDTHS,
                 drop_rate: float = 0.2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.widths = tuple(widths)
        self.drop_rate = drop_rate
        self.stem = _block(in_chans, widths[0])
        self.stages = nn.Sequential(*[_block(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.num_features = self.head_hidden_size = widths[-1]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.pretrained_cfg = dict(CNN_PRETRAINED_CFG, input_size=(in_chans, 64, 64), num_classes=num_classes)
        self.default_cfg = self.pretrained_cfg
        self.feature_info = [{"num_chs": w, "reduction": 2 ** i, "module": f"stages.{i - 1}" if i else "stem"}
                             for i, w in enumerate(widths)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (N, C, H/8, W/8)."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify; with ``pre_logits`` return the pooled (N, num_features) vector."""
        x = self.pool(x).flatten(1)
        if pre_logits:
            return x
        return self.head(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final linear layer."""
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer with a new one for ``num_classes`` classes."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


def _register_with_timm() -> None:
    """Register the CNN in timm's model registry as ``ooc_cnn`` (``timm.create_model("ooc_cnn", num_classes=2)``)."""
    from timm.models import is_model, register_model

    if is_model("ooc_cnn"):
        return

    def ooc_cnn(pretrained: bool = False, **kwargs) -> SmallCNN:
        """The small from-scratch CNN of ooc-bench (no pretrained weights exist)."""
        if pretrained:
            raise ValueError("ooc_cnn is a from-scratch model: there are no pretrained weights")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        return SmallCNN(**kwargs)

    ooc_cnn.__module__ = __name__
    register_model(ooc_cnn)


_register_with_timm()
