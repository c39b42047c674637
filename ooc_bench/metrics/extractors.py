"""Feature extractors behind one small interface (inception, domain, dinov2) and a timm-like registry."""

from __future__ import annotations

import abc
import os
import re
import socket
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..data import resize_square
from ..errors import UserInputError, WeightsUnavailableError
from ..hashing import config_hash, file_hash
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
    images = as_rgb_uint8(images)
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = resize_square(im, size)
    return out


# --------------------------------------------------------------------------------------------- resize modes
# How a network extractor brings images to its input size; every extractor records its mode in provenance
# ("resize_mode", also in every quality row) and the mode is part of the extractor id (so of every cache key).
RESIZE_MODES: dict[str, str] = {
    "torch-fidelity": "uint8 image at its own size into torch-fidelity's TF1-compatible bilinear resize "
                      "(interpolate_bilinear_2d_like_tensorflow1x, align_corners=False), as torch-fidelity does",
    "clean": "PIL bicubic per channel on float32 (mode F), clipped to [0, 255], not re-quantised (clean-fid)",
    "pil-bicubic": "PIL bicubic on the uint8 RGB image, rounded to uint8 (torchvision Resize on PIL images; "
                   "dgm-eval's default)",
}


def check_resize_mode(mode: str, option: str = "--resize-mode") -> str:
    """``mode`` if it is one of :data:`RESIZE_MODES`, else UserInputError naming ``option`` and the choices."""
    if mode not in RESIZE_MODES:
        raise UserInputError(f"{option}: unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")
    return mode


def resize_clean(images: np.ndarray, size: int) -> np.ndarray:
    """float32 N x size x size x 3 images in [0, 255]: each channel of the uint8 image resized as a float32 PIL
    image (mode F) with bicubic filtering, clipped to [0, 255] and NOT rounded (clean-fid's "clean" resize).
    Non-square images are stretched, as clean-fid does."""
    from PIL import Image

    images = as_rgb_uint8(images)
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, im in enumerate(images):
        for c in range(3):
            ch = Image.fromarray(np.ascontiguousarray(im[:, :, c], dtype=np.float32))  # float32 2-D -> mode F
            out[i, :, :, c] = np.asarray(ch.resize((size, size), resample=Image.BICUBIC))
    return np.clip(out, 0.0, 255.0, out=out)


def resize_pil_bicubic(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x size x size x 3: PIL bicubic on the uint8 RGB image (what torchvision's ``Resize((s, s),
    BICUBIC)`` does to a PIL image); non-square images are stretched; no-op at that size already."""
    from PIL import Image

    images = as_rgb_uint8(images)
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(im)).resize((size, size), resample=Image.BICUBIC))
    return out


def resize_tf1_bilinear(x: Any, size: int) -> Any:
    """A float N x C x H x W tensor resized to size x size by torch-fidelity's TF1-compatible bilinear resize."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)


def resized_for_network(images: np.ndarray, size: int, mode: str, device: Any) -> Any:
    """uint8 N x H x W x 3 numpy images as a float32 N x 3 x size x size tensor in [0, 255] on ``device``, by ``mode``."""
    import torch

    if mode == "clean":
        arr = resize_clean(images, size)
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)
    if mode == "pil-bicubic":
        arr = resize_pil_bicubic(images, size)
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device).float()
    # contiguous NCHW, as torch-fidelity's own resize returns it (the conv kernels then give bitwise-equal output)
    x = torch.from_numpy(np.ascontiguousarray(as_rgb_uint8(images))).permute(0, 3, 1, 2).contiguous().to(device).float()
    return x if tuple(x.shape[-2:]) == (size, size) else resize_tf1_bilinear(x, size)


def _local_weights(weights: str | os.PathLike, option: str) -> Path:
    """A user-given weights file, or UserInputError naming ``option`` when it does not exist."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserInputError(f"{option}: file {path} does not exist")
    return path


def as_rgb_uint8(images: np.ndarray) -> np.ndarray:
    """Images as uint8 N x H x W x 3 (grey replicated, alpha dropped), or UserInputError naming what is wrong."""
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
        images = as_rgb_uint8(images_uint8_NHWC)
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

    original = fe.load_state_dict_from_url  # looked up when the model is built: swap it for that moment only
    fe.load_state_dict_from_url = lambda *a, **k: _BLANK
    try:
        model = _Blank("inception-v3-compat", ["2048"])
    finally:
        fe.load_state_dict_from_url = original
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

    ``resize_mode`` (see :data:`RESIZE_MODES`):

    * ``"torch-fidelity"`` (default): the uint8 images go, at the size they have, into torch-fidelity's own
      forward pass, whose TF1-compatible bilinear resize brings them to 299 px — the FID that
      ``torch_fidelity.calculate_metrics`` / ``fidelity --input1 DIR`` reports on the same images.
    * ``"clean"``: clean-fid's preprocessing — PIL bicubic per channel in float to 299 px, clipped, not
      re-quantised — then (x - 128) / 128 and the same network (clean-fid runs NVIDIA's torchscript port of the
      same TF graph).
    * ``"pil-bicubic"``: PIL bicubic on the uint8 image to 299 px, rounded to uint8 (what saving 299 px PNGs
      and running torch-fidelity on them gives; ooc-bench's default before the resize modes existed).
    """

    name = "inception"

    def __init__(self, weights: str | os.PathLike | None = None, resize_mode: str = "torch-fidelity",
                 device: str = "auto", timeout: float = 15.0, resize: str | None = None) -> None:
        super().__init__()
        mode = check_resize_mode(resize if resize is not None else resize_mode)  # resize=: the old keyword
        if weights is not None:
            path = _local_weights(weights, "--inception-weights")
            source = str(path)
        else:
            path = default_inception_weights(timeout=timeout)
            source = INCEPTION_URL
        from importlib.metadata import version

        self._path = path
        self._device_name = device
        self.resize_mode = mode
        self.provenance = {"name": self.name, "feature_space": "inception",
                           "impl": "torch_fidelity.FeatureExtractorInceptionV3 inception-v3-compat",
                           "feature": "2048", "dim": 2048, "weights": source, "weights_path": str(path),
                           "weights_sha": _sha_of(path), "resolution": INCEPTION_SIZE, "resize_mode": mode,
                           "preprocessing": f"{RESIZE_MODES[mode]}; to 299x299; (x-128)/128",
                           "dtype": "float32", "torch_fidelity": version("torch-fidelity")}

    @property
    def resize(self) -> str:
        """The resize mode (old attribute name)."""
        return self.resize_mode

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
        with torch.inference_mode():  # fp32 on every device: FID is sensitive to reduced precision
            if self.resize_mode == "torch-fidelity":  # torch-fidelity's own forward, resize included
                x = self._to_nchw(images)
                if self._device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                feats = model(x)[0]
            else:
                x = resized_for_network(images, INCEPTION_SIZE, self.resize_mode, self._device)
                if self._device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                feats = inception_pool_features(model, x)
        return feats.double().cpu().numpy()


def inception_pool_features(model: Any, x: Any) -> Any:
    """torch-fidelity InceptionV3 '2048' features of a float N x 3 x 299 x 299 tensor in [0, 255].

    torch-fidelity's forward accepts only uint8; this runs the same modules (in their definition order, which
    is the forward order) on float input, so a float image that is not re-quantised (the clean mode) keeps its
    fractional values. On uint8-valued input it equals ``model(x)[0]``.
    """
    import torch

    if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
        raise ValueError(f"inception_pool_features needs 299 x 299 input, got {tuple(x.shape)}")
    x = (x.to(model.feature_extractor_internal_dtype) - 128) / 128
    for name, layer in model.named_children():
        if name == "fc":
            break
        x = layer(x)
    return torch.flatten(x, 1).to(torch.float32)


# --------------------------------------------------------------------------------------------- dinov2

DINOV2_MODELS: dict[str, str] = {  # size name (as in facebookresearch/dinov2 and dgm-eval) -> timm architecture
    "vits14": "vit_small_patch14_dinov2",
    "vitb14": "vit_base_patch14_dinov2",
    "vitl14": "vit_large_patch14_dinov2",
    "vitg14": "vit_giant_patch14_dinov2",
}
DINOV2_DIMS = {"vits14": 384, "vitb14": 768, "vitl14": 1024, "vitg14": 1536}  # CLS feature width
DINOV2_DEFAULT = "vitl14"  # dgm-eval's default (its FD_DINOv2 numbers are ViT-L/14)
_HUB_ID = re.compile(r"^(hf-hub:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def resolve_dinov2_model(model: str) -> tuple[str, str, str]:
    """(size name, timm architecture, timm pretrained tag) of ``vitl14``, ``dinov2_vitl14``, ``dinov2-vit-l-14``,
    ``vit_large_patch14_dinov2`` or ``vit_large_patch14_dinov2.lvd142m``; UserInputError naming --dinov2-model."""
    raw = str(model).strip()
    arch, _, tag = raw.partition(".")
    key = arch.lower().replace("dinov2_", "").replace("dinov2-", "").replace("vit-", "vit").replace("-", "")
    if key in DINOV2_MODELS:
        arch = DINOV2_MODELS[key]
    by_arch = {v: k for k, v in DINOV2_MODELS.items()}
    if arch not in by_arch:
        raise UserInputError(f"--dinov2-model: unknown DINOv2 model {model!r}; choose one of "
                             f"{', '.join(DINOV2_MODELS)} (or the timm names {', '.join(DINOV2_MODELS.values())})")
    return by_arch[arch], arch, f"{arch}.{tag or 'lvd142m'}"


@register_extractor("dinov2", aliases=("dino", "dinov2-fd"),
                    description="DINOv2 ViT (default ViT-L/14, as dgm-eval) CLS features through timm")
class DinoV2Extractor(_NetworkExtractor):
    """A DINOv2 ViT's CLS-token features (timm; the final-norm CLS token, what ``torch.hub`` DINOv2 returns).

    ``model``: ``vits14``, ``vitb14``, ``vitl14`` (default, as dgm-eval) or ``vitg14`` (or timm names).
    ``weights``: a local file (timm or original facebookresearch format; timm converts the latter) or a Hugging
    Face hub id (``timm/vit_large_patch14_dinov2.lvd142m``, ``hf-hub:`` prefix optional; read from the HF cache
    offline); default: timm's hub id of ``model``. ``model_kwargs`` overrides the timm architecture (depth,
    width: tiny test configs, custom variants) and is part of the id.
    ``resize_mode`` (:data:`RESIZE_MODES`): ``pil-bicubic`` (default: dgm-eval's torchvision bicubic on PIL
    images), ``clean`` (dgm-eval ``--clean_resize``) or ``torch-fidelity`` (its TF1-bilinear, as torch-fidelity's
    ``dinov2-vit-*`` extractors). Then /255 and the model's ImageNet mean/std.
    """

    name = "dinov2"

    def __init__(self, model: str = DINOV2_DEFAULT, weights: str | os.PathLike | None = None, resolution: int = 224,
                 device: str = "auto", amp: bool = False, resize_mode: str = "pil-bicubic",
                 model_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        size_name, arch, tag = resolve_dinov2_model(model)
        mode = check_resize_mode(resize_mode)
        if int(resolution) % 14:
            raise UserInputError(f"dinov2: resolution must be a multiple of 14 (patch size), got {resolution}")
        hint = "pass a local weights file or a hub id with --dinov2-weights (weights= in Python), or use --features domain"
        wstr = None if weights is None else str(weights)
        if wstr is not None and (Path(wstr).expanduser().is_file() or not _HUB_ID.match(wstr)
                                 or wstr.lower().endswith(_WEIGHT_SUFFIXES)):
            path = _local_weights(wstr, "--dinov2-weights")
            source = str(path)
        else:
            if wstr is None:
                import timm

                cfg = timm.models.get_pretrained_cfg(tag)
                repo = getattr(cfg, "hf_hub_id", None) or f"timm/{tag}"
            else:
                repo = wstr.removeprefix("hf-hub:")
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(repo, "model.safetensors"))
            except Exception as exc:
                state = "offline mode is on" if is_offline() else "could not be downloaded"
                raise WeightsUnavailableError(f"DINOv2 weights {repo} are not in the Hugging Face cache and {state} "
                                              f"({type(exc).__name__}); {hint}") from exc
            source = f"hf-hub:{repo}"
        self._arch, self._path, self._device_name, self._amp = arch, path, device, bool(amp)
        self._model_kwargs = dict(model_kwargs or {})
        self.resolution = int(resolution)
        self.resize_mode = mode
        self.model_size = size_name
        self.provenance = {"name": self.name, "feature_space": f"dinov2-{size_name}", "model": size_name,
                           "impl": f"timm {arch} CLS token", "model_kwargs": self._model_kwargs,
                           "weights": source, "weights_path": str(path), "weights_sha": _sha_of(path),
                           "dim": int(self._model_kwargs.get("embed_dim", DINOV2_DIMS[size_name])),
                           "resolution": self.resolution, "resize_mode": mode,
                           "preprocessing": f"{RESIZE_MODES[mode]}; to {self.resolution}x{self.resolution}; /255; "
                                            "ImageNet mean/std",
                           "amp": self._amp}

    def _build(self, device: Any) -> Any:
        import timm
        import torch

        try:
            model = timm.create_model(self._arch, pretrained=True, num_classes=0, img_size=self.resolution,
                                      pretrained_cfg_overlay={"file": str(self._path)}, **self._model_kwargs)
        except Exception as exc:
            raise UserInputError(f"--dinov2-weights: could not load {self._path} into {self._arch} ({exc})") from exc
        cfg = model.pretrained_cfg
        self._mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1).to(device)
        self._std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1).to(device)
        if int(model.num_features) != self.provenance["dim"]:  # known before loading: the id must not change
            raise UserInputError(f"--dinov2-weights: {self._arch} gives {model.num_features}-d features, "
                                 f"expected {self.provenance['dim']}")
        return model.to(device).eval().requires_grad_(False)

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        import torch

        from ..runtime import amp_dtype

        model = self._load()
        x = resized_for_network(images, self.resolution, self.resize_mode, self._device) / 255.0
        x = (x - self._mean) / self._std
        dt = amp_dtype(self._device) if self._amp else None
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=dt, enabled=dt is not None):
            feats = model(x)
        return feats.double().cpu().numpy()


# --------------------------------------------------------------------------------------------- domain
# The domain feature space (a network trained on the real train split, passed in) lives in metrics/domain.py;
# imported here so that create_extractor("domain", ...) finds it and old imports keep working.
from .domain import DomainExtractor  # noqa: E402,F401
