"""Feature extractors behind one small interface (inception, domain, dinov2) and a timm-like registry."""

from __future__ import annotations

import abc
import os
import socket
from pathlib import Path
from typing import Any, Callable, ClassVar
from unittest import mock

import numpy as np

from ..data import RESIZE_POLICY, resize_square
from ..errors import UserInputError, WeightsUnavailableError
from ..hashing import array_hash, config_hash, file_hash
from ..runtime import is_offline

_REGISTRY: dict[str, type["FeatureExtractor"]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_extractor(name: str, aliases: tuple[str, ...] = (), description: str = "") -> Callable[[type], type]:
    """Class decorator: make a FeatureExtractor subclass available to :func:`create_extractor` by name and aliases."""

    def wrap(cls: type) -> type:
        _REGISTRY[name] = cls
        _DESCRIPTIONS[name] = description or (cls.__doc__ or "").strip().splitlines()[0]
        for alias in (name, *aliases):
            _ALIASES[alias.lower()] = name
        return cls

    return wrap


def resolve_extractor_name(name: str) -> str:
    """The registry name for a name or alias (case-insensitive); UserInputError listing the choices if unknown."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise UserInputError(f"unknown feature extractor {name!r} (--features); choose one of: {', '.join(sorted(_REGISTRY))}")
    return _ALIASES[key]


def list_extractors() -> dict[str, str]:
    """Registered extractor names with their one-line descriptions."""
    return dict(sorted(_DESCRIPTIONS.items()))


def create_extractor(name: str, **kw: Any) -> "FeatureExtractor":
    """Build a feature extractor by name or alias: ``inception``, ``domain`` or ``dinov2``."""
    return _REGISTRY[resolve_extractor_name(name)](**kw)


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 N x H x W x 3 images to size x size by the data layer's policy (``resize_square``: centre crop
    to a square, PIL bicubic), rounded back to uint8 (no-op if already that size)."""
    images = _as_rgb_uint8(images)
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = resize_square(im, size)
    return out


def _local_weights(weights: str | os.PathLike, option: str) -> Path:
    """A user-given weights file, or UserInputError naming ``option`` when it does not exist."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserInputError(f"{option}: file {path} does not exist")
    return path


def _as_rgb_uint8(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise UserInputError(f"images must be uint8 N x H x W x 3 arrays, got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserInputError(f"images must be uint8 N x H x W x 3 arrays, got shape {images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


class FeatureExtractor(abc.ABC):
    """Maps uint8 RGB images (N x H x W x 3) to float64 feature vectors (N x D).

    ``provenance`` names the extractor, its weights (source and sha) and its preprocessing; its hash
    (:meth:`id`) is part of every feature-cache key and every result row.
    """

    name: ClassVar[str] = "extractor"

    def __init__(self) -> None:
        self.provenance: dict[str, Any] = {"name": self.name}
        self.passes = 0  # number of extract() calls that ran the network (for tests and benchmarks)

    def id(self) -> str:
        """Hash of the provenance (weights sha, resolution, preprocessing; not local paths, so moved files still hit)."""
        skip = ("weights_path", "weights") if self.provenance.get("weights_sha") else ("weights_path",)
        stable = {k: v for k, v in self.provenance.items() if k not in skip}
        return config_hash(stable)

    @property
    def weights(self) -> str:
        """A short description of the weights for tables: source plus sha when known."""
        src = str(self.provenance.get("weights", ""))
        sha = self.provenance.get("weights_sha")
        return f"{src} (sha {sha})" if sha else src

    def extract(self, images_uint8_NHWC: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Features of the images, float64 (N, D), in input order."""
        images = _as_rgb_uint8(images_uint8_NHWC)
        self.passes += 1
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float64)
        chunks = [self._extract_batch(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks).astype(np.float64, copy=False)

    @property
    def dim(self) -> int:
        """Feature dimension (may need the model)."""
        return int(self.provenance.get("dim", 0))

    @abc.abstractmethod
    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        """Features of one batch of uint8 RGB images."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id()}, weights={self.weights!r})"


class _NetworkExtractor(FeatureExtractor):
    """A FeatureExtractor around a pretrained torch network, built on first use (warm caches never load it)."""

    _device_name: str = "auto"
    _model: Any = None

    def _build(self, device: Any) -> Any:
        """The network in eval mode on ``device``; UserInputError naming the weights option if it cannot be loaded."""
        raise NotImplementedError

    def _load(self) -> Any:
        if self._model is None:
            from ..runtime import pick_device

            self._device = pick_device(self._device_name)
            self._model = self._build(self._device)
        return self._model

    def _to_nchw(self, images: np.ndarray) -> Any:
        """uint8 N x H x W x 3 numpy images as a uint8 N x 3 x H x W tensor on the model's device."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(self._device)


# --------------------------------------------------------------------------------------------- inception

INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SIZE = 299
_BLANK = object()
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def _sha_of(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_hash(path)
    return _SHA_MEMO[key]


def _blank_inception() -> Any:
    """torch-fidelity's InceptionV3 feature extractor with untouched (default-initialised) weights, no download."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class _Blank(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
            if state_dict is _BLANK:
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: _BLANK):
        model = _Blank("inception-v3-compat", ["2048"])
    return model


def load_inception(weights_path: str | os.PathLike) -> Any:
    """torch-fidelity's ``inception-v3-compat`` extractor (feature '2048') with weights from a .pth or .safetensors file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = Path(weights_path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        model = _blank_inception()
        model.load_state_dict(load_file(str(path)))
        return model.float().eval().requires_grad_(False)
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))


def random_inception_weights(path: str | os.PathLike, seed: int = 0, calib_batches: int = 2, calib_batch_size: int = 8,
                             calib_size: int = 128) -> Path:
    """Write a randomly initialised but non-degenerate InceptionV3 state_dict (tests, benchmarks, offline demos).

    torch-fidelity's own init gives near-constant features (FID ~ 0), so convolutions are re-initialised
    (Kaiming normal) and batch-norm statistics recalibrated on a few smooth random batches in train mode
    (at ``calib_size`` px for speed).
    Saved with ``torch.save`` (``.pth``, what torch-fidelity's ``feature_extractor_weights_path`` reads) or as
    ``.safetensors`` when the path ends so.
    """
    import torch
    import torch.nn.functional as F

    from ..atomic import atomic_path

    gen = torch.Generator().manual_seed(seed)
    model = _blank_inception().float()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.01, generator=gen)
            torch.nn.init.zeros_(m.bias)
    model.train()
    # calibrate at a reduced size (layer by layer, as forward() orders them) to keep this cheap on CPU
    layers = [m for n, m in model.named_children() if n not in ("AvgPool", "fc")]
    with torch.no_grad():
        for _ in range(calib_batches):
            low = torch.rand(calib_batch_size, 3, 8, 8, generator=gen)
            x = F.interpolate(low, size=(calib_size, calib_size), mode="bilinear", align_corners=False)
            x = ((x * 255).round() - 128) / 128
            for layer in layers:
                x = layer(x)
    model.eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save(state, str(tmp))
    return path


def default_inception_weights(download: bool = True, timeout: float = 15.0) -> Path:
    """The torch-fidelity default Inception weights file: from the torch hub cache, else downloaded there.

    Fails fast with WeightsUnavailableError (naming ``--inception-weights``) when offline or unreachable.
    """
    import torch

    target = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    hint = ("pass a local copy with --inception-weights FILE (weights= in Python; torch-fidelity's "
            f"{INCEPTION_URL.rsplit('/', 1)[-1]}), or use --features domain/dinov2")
    if is_offline() or not download:
        raise WeightsUnavailableError(f"Inception weights are not in the torch hub cache ({target}) and offline mode is on; {hint}")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(INCEPTION_URL, str(target), progress=False)
    except Exception as exc:  # URLError, timeouts, HTTP errors: all mean "not available"
        raise WeightsUnavailableError(f"could not download the Inception weights ({type(exc).__name__}: {exc}); {hint}") from exc
    finally:
        socket.setdefaulttimeout(old)
    return target


@register_extractor("inception", aliases=("inception-v3-compat", "inceptionv3", "inception_v3", "fid"),
                    description="torch-fidelity InceptionV3 (inception-v3-compat), 2048-d pool features at 299 px")
class InceptionExtractor(_NetworkExtractor):
    """torch-fidelity's InceptionV3 (``inception-v3-compat``, feature '2048'): the standard FID/KID feature space.

    Preprocessing policy (``resize="pil-bicubic"``, default, as clean-fid argues): every image, real or
    synthetic, is resized to 299 x 299 with PIL bicubic and rounded to uint8 — exactly what saving a 299 px
    PNG does — then torch-fidelity normalises (x - 128) / 128; its TF1-bilinear resize is then the identity.
    ``resize="torch-fidelity"`` hands the native-size uint8 images to torch-fidelity's own TF1-bilinear resize
    (to reproduce numbers from ``fidelity --input1 DIR`` on small images).
    """

    name = "inception"

    def __init__(self, weights: str | os.PathLike | None = None, resize: str = "pil-bicubic", device: str = "auto",
                 timeout: float = 15.0) -> None:
        super().__init__()
        if resize not in ("pil-bicubic", "torch-fidelity"):
            raise UserInputError(f"inception: resize must be 'pil-bicubic' or 'torch-fidelity', got {resize!r}")
        if weights is not None:
            path = _local_weights(weights, "--inception-weights")
            source = str(path)
        else:
            path = default_inception_weights(timeout=timeout)
            source = INCEPTION_URL
        from importlib.metadata import version

        self._path = path
        self._device_name = device
        self.resize = resize
        pre = (f"PIL bicubic resize of uint8 RGB to 299x299 ({RESIZE_POLICY}), rounded to uint8; (x-128)/128"
               if resize == "pil-bicubic"
               else "torch-fidelity TF1-bilinear resize of uint8 RGB to 299x299; (x-128)/128")
        self.provenance = {"name": self.name, "impl": "torch_fidelity.FeatureExtractorInceptionV3 inception-v3-compat",
                           "feature": "2048", "dim": 2048, "weights": source, "weights_path": str(path),
                           "weights_sha": _sha_of(path), "resolution": INCEPTION_SIZE, "preprocessing": pre,
                           "dtype": "float32", "torch_fidelity": version("torch-fidelity")}

    def _build(self, device: Any) -> Any:
        import torch

        try:
            model = load_inception(self._path)
        except Exception as exc:
            raise UserInputError(f"--inception-weights: {self._path} is not a torch-fidelity InceptionV3 state_dict ({exc})") from exc
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        import torch

        model = self._load()
        if self.resize == "pil-bicubic":
            images = resize_uint8(images, INCEPTION_SIZE)
        x = self._to_nchw(images)
        if self._device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():  # fp32 on every device: FID is sensitive to reduced precision
            feats = model(x)[0]
        return feats.double().cpu().numpy()


# --------------------------------------------------------------------------------------------- dinov2

@register_extractor("dinov2", aliases=("dino", "dinov2-s", "dinov2_vits14", "vit_small_patch14_dinov2"),
                    description="timm DINOv2 ViT (default ViT-S/14) CLS features, as the dgm-eval study recommends")
class DinoV2Extractor(_NetworkExtractor):
    """A timm DINOv2 ViT's CLS-token features (ViT-S/14 by default): weights from a local file or the HF hub cache.

    Preprocessing: PIL bicubic resize of uint8 RGB to ``resolution`` (224, a multiple of the 14 px patch),
    scaled to [0, 1] and normalised with the model's ImageNet mean/std; position embeddings are resampled by timm.
    """

    name = "dinov2"

    def __init__(self, model: str = "vit_small_patch14_dinov2", weights: str | os.PathLike | None = None,
                 resolution: int = 224, device: str = "auto", amp: bool = False) -> None:
        super().__init__()
        import timm

        arch = model.split(".")[0]
        if arch not in timm.list_models("*dinov2*"):
            raise UserInputError(f"dinov2: unknown timm DINOv2 model {model!r}; try one of {', '.join(timm.list_models('vit_*_dinov2'))}")
        if resolution % 14:
            raise UserInputError(f"dinov2: resolution must be a multiple of 14 (patch size), got {resolution}")
        if weights is not None:
            path = _local_weights(weights, "--dinov2-weights")
            source = str(path)
        else:
            tag = model if "." in model else f"{model}.lvd142m"
            cfg = timm.models.get_pretrained_cfg(tag)
            repo = getattr(cfg, "hf_hub_id", None) or f"timm/{tag}"
            hint = "pass a local weights file with --dinov2-weights FILE (weights= in Python), or use --features domain"
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(repo, "model.safetensors"))
            except Exception as exc:
                raise WeightsUnavailableError(f"DINOv2 weights {repo} are not in the Hugging Face cache and could not be "
                                              f"downloaded ({type(exc).__name__}); {hint}") from exc
            source = f"hf-hub:{repo}"
        self._arch, self._path, self._device_name, self._amp = arch, path, device, bool(amp)
        self.resolution = int(resolution)
        self.provenance = {"name": self.name, "impl": f"timm {arch} CLS token", "weights": source,
                           "weights_path": str(path), "weights_sha": _sha_of(path), "resolution": self.resolution,
                           "preprocessing": f"PIL bicubic resize of uint8 RGB to {resolution}x{resolution} ({RESIZE_POLICY}); "
                                            "/255; ImageNet mean/std",
                           "amp": self._amp}

    def _build(self, device: Any) -> Any:
        import timm
        import torch

        try:
            model = timm.create_model(self._arch, pretrained=True, num_classes=0, img_size=self.resolution,
                                      pretrained_cfg_overlay={"file": str(self._path)})
        except Exception as exc:
            raise UserInputError(f"--dinov2-weights: could not load {self._path} into {self._arch} ({exc})") from exc
        cfg = model.pretrained_cfg
        self._mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1).to(device)
        self._std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1).to(device)
        self.provenance["dim"] = int(model.num_features)
        return model.to(device).eval().requires_grad_(False)

    @property
    def dim(self) -> int:
        self._load()
        return int(self.provenance["dim"])

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        import torch

        from ..runtime import amp_dtype

        model = self._load()
        images = resize_uint8(images, self.resolution)
        x = self._to_nchw(images).float() / 255.0
        x = (x - self._mean) / self._std
        dt = amp_dtype(self._device) if self._amp else None
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=dt, enabled=dt is not None):
            feats = model(x)
        return feats.double().cpu().numpy()


# --------------------------------------------------------------------------------------------- domain

@register_extractor("domain", aliases=("classifier", "domain-cnn"),
                    description="penultimate features of a classifier trained on the real training split (no download)")
class DomainExtractor(FeatureExtractor):
    """Penultimate (pre-logits) features of a classifier trained on the real training split.

    Needs no download. The classifier (``ooc_bench.classifiers.train_classifier``) is trained lazily on the
    first :meth:`extract` call, so warm feature caches never train it; a stratified ``val_fraction`` of the
    training split (never val/test) is held out for early stopping. Preprocessing is the classifier's own:
    resize to ``img_size`` and its normalisation.
    """

    name = "domain"

    def __init__(self, train: tuple[np.ndarray, np.ndarray], classes: list[str], seed: int = 0, model: str = "cnn",
                 epochs: int = 10, img_size: int = 64, batch_size: int = 32, val_fraction: float = 0.15,
                 pretrained: bool = False, weights: str | None = None, device: str = "auto", **config: Any) -> None:
        super().__init__()
        if train is None or len(train) != 2:
            raise UserInputError("domain extractor: pass train=(images_uint8, labels) of the real training split")
        x, y = _as_rgb_uint8(train[0]), np.asarray(train[1], dtype=np.int64)
        if len(x) != len(y) or len(x) < 4:
            raise UserInputError(f"domain extractor: train needs >= 4 labelled images with one label each (got {len(x)} images, {len(y)} labels)")
        self._x, self._y, self.classes = x, y, list(classes)
        self.train_config = {"model": model, "epochs": int(epochs), "img_size": int(img_size), "batch_size": int(batch_size),
                             "pretrained": bool(pretrained), "weights": weights, "device": device, **config}
        self.seed, self.val_fraction = int(seed), float(val_fraction)
        self.result: Any = None
        train_hash = config_hash([array_hash(x), array_hash(y)])
        self.provenance = {"name": self.name, "impl": f"ooc_bench.classifiers {model} penultimate features",
                           "weights": f"trained on real train split {train_hash} (seed {seed}, {epochs} epochs"
                                      + (f", init {weights or 'pretrained'}" if pretrained or weights else ", from scratch") + ")",
                           "weights_sha": None, "train_hash": train_hash, "classes": self.classes, "seed": self.seed,
                           "val_fraction": self.val_fraction,
                           "train_config": {k: v for k, v in self.train_config.items() if k != "device"},
                           "resolution": int(img_size), "preprocessing": f"classifier's own: resize to {img_size}, model normalisation"}

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        val = []
        for c in np.unique(self._y):
            idx = rng.permutation(np.flatnonzero(self._y == c))
            n_val = int(round(len(idx) * self.val_fraction)) if len(idx) > 2 else 0
            val.extend(idx[:n_val].tolist())
        val_mask = np.zeros(len(self._y), dtype=bool)
        val_mask[val] = True
        return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)

    def fit(self) -> Any:
        """Train the domain classifier now (otherwise done on first extract); returns the TrainResult."""
        if self.result is None:
            try:
                from ..classifiers import TrainConfig, train_classifier
            except ImportError as exc:  # pragma: no cover - only while the classifier package is missing
                raise UserInputError(f"domain extractor needs ooc_bench.classifiers ({exc}); use --features inception or dinov2") from exc
            tr, va = self._split()
            cfg = TrainConfig(**self.train_config)
            val = (self._x[va], self._y[va]) if len(va) else (self._x[tr], self._y[tr])
            self.result = train_classifier(train=(self._x[tr], self._y[tr]), val=val, test=None,
                                           classes=self.classes, config=cfg, seed=self.seed)
        return self.result

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.fit().embed(images, batch_size=max(1, len(images))), dtype=np.float64)

    @property
    def dim(self) -> int:
        return int(self._extract_batch(self._x[:1]).shape[1])
