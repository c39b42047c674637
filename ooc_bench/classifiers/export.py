"""Deployment: export a trained classifier to ONNX (uint8 NHWC in, normalisation inside) and predict with onnxruntime or torch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError

ONNX_INPUT = "images"  # uint8 (N, S, S, 3) RGB, S = img_size from the preprocessing JSON
ONNX_OUTPUTS = ("logits", "probabilities")


def _deployable(result: Any):
    """Wrap a trained model so it takes uint8 NHWC images and does the scaling and normalisation itself."""
    import torch
    from torch import nn

    pre = result.preprocess

    class Deployable(nn.Module):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = images.permute(0, 3, 1, 2).to(torch.float32) / 255.0
            if pre.in_chans == 1:
                x = x.mean(1, keepdim=True)
            logits = self.model((x - self.mean) / self.std)
            return logits, logits.softmax(1)

    return Deployable(result.model.float().cpu().eval()).eval()


def preprocess_json_path(onnx_path: str | os.PathLike) -> Path:
    """Where the preprocessing config of an exported model lives: ``MODEL.onnx`` → ``MODEL.json``."""
    return Path(onnx_path).with_suffix(".json")


def export_onnx(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, opset: int = 18) -> Path:
    """Export a checkpoint folder (from ``TrainResult.save``) to ONNX, plus its preprocessing JSON beside it.

    The ONNX model takes uint8 RGB images (N, S, S, 3) — N is dynamic, S is ``img_size`` — and returns
    ``logits`` and ``probabilities`` (N, n_classes); scaling to [0,1] and mean/std normalisation are inside.
    """
    import torch

    from ..atomic import atomic_path, write_json
    from .training import load_checkpoint

    result = load_checkpoint(checkpoint)
    wrapped = _deployable(result)
    s = result.preprocess.img_size
    example = torch.zeros((2, s, s, 3), dtype=torch.uint8)
    onnx_path = Path(onnx_path)
    if onnx_path.suffix.lower() != ".onnx":
        raise UserInputError(f"--onnx {onnx_path}: the file name must end in .onnx")
    with atomic_path(onnx_path) as tmp:
        torch.onnx.export(wrapped, (example,), str(tmp), input_names=[ONNX_INPUT], output_names=list(ONNX_OUTPUTS),
                          dynamic_axes={ONNX_INPUT: {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    meta = {"format": "ooc-bench-onnx/1", "input": ONNX_INPUT, "input_dtype": "uint8", "input_layout": "NHWC",
            "input_shape": ["batch", s, s, 3], "outputs": list(ONNX_OUTPUTS), "classes": list(result.classes),
            "preprocess": result.preprocess.to_dict(), "normalisation_inside": True,
            "model": result.info.name, "timm_name": result.info.timm_name,
            "checkpoint": str(Path(checkpoint).resolve())}
    write_json(preprocess_json_path(onnx_path), meta)
    return onnx_path


def load_images(paths: list[str | os.PathLike], size: int) -> np.ndarray:
    """Decode image files (the data layer's decoder: TIFF, 16-bit, EXIF orientation) to uint8 N x size x size x 3."""
    from ..data import decode_image, resize_square

    out = []
    for p in paths:
        if not Path(p).is_file():
            raise UserInputError(f"{p}: no such image file")
        out.append(resize_square(decode_image(str(p)), size))
    return np.stack(out) if out else np.zeros((0, size, size, 3), dtype=np.uint8)


def predict_files(model_path: str | os.PathLike, images: list[str | os.PathLike], backend: str = "auto",
                  batch_size: int = 32) -> tuple[list[str], np.ndarray, str]:
    """Class probabilities for image files with a checkpoint folder or an exported .onnx model.

    ``backend``: "onnxruntime", "torch" or "auto" (onnxruntime for .onnx files when installed, else torch).
    Returns (classes, probabilities (N, K), backend used).
    """
    model_path = Path(model_path)
    if model_path.suffix.lower() == ".onnx":
        meta_path = preprocess_json_path(model_path)
        if not model_path.is_file():
            raise UserInputError(f"{model_path}: no such ONNX file")
        if not meta_path.is_file():
            raise UserInputError(f"{meta_path}: the preprocessing JSON written by `ooc-bench export` is missing")
        meta = json.loads(meta_path.read_text())
        size = int(meta["preprocess"]["img_size"])
        x = load_images(list(images), size)
        use_ort = backend in ("auto", "onnxruntime")
        if use_ort:
            try:
                import onnxruntime as ort
            except ImportError:
                if backend == "onnxruntime":
                    raise UserInputError("onnxruntime is not installed: pip install onnxruntime, or use --backend torch")
                use_ort = False
        if use_ort:
            sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
            probs = [sess.run(["probabilities"], {meta["input"]: x[i:i + batch_size]})[0]
                     for i in range(0, len(x), batch_size)]
            return list(meta["classes"]), np.concatenate(probs) if probs else np.zeros((0, len(meta["classes"]))), "onnxruntime"
        ckpt = Path(meta.get("checkpoint", ""))
        if not (ckpt / "model_config.json").is_file():
            raise UserInputError(f"onnxruntime is not installed and the checkpoint {ckpt} of {model_path} is gone; "
                                 "install onnxruntime or pass the checkpoint folder")
        model_path = ckpt
    from .training import load_checkpoint

    result = load_checkpoint(model_path)
    x = load_images(list(images), result.preprocess.img_size)
    return list(result.classes), result.predict_proba(x, batch_size=batch_size), "torch"
