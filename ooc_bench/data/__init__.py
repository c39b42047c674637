"""The data layer: read image sets in several layouts, split them without leakage, cache decoded images, make a demo set."""

from .cache import ImageCache, default_cache_dir, split_arrays, training_set
from .decode import RESIZE_POLICY, decode_image, resize_square
from .demo import make_demo
from .layouts import LAYOUTS, detect_layout, load_dataset
from .records import SPLITS, Dataset, ImageRecord
from .opening import open_split
from .split import check_train_only, make_split, manifest_hash, read_split_manifest, write_split_manifest
from .training import TrainingSet

__all__ = [
    "Dataset", "ImageRecord", "SPLITS", "LAYOUTS", "RESIZE_POLICY",
    "load_dataset", "detect_layout", "decode_image", "resize_square",
    "make_split", "open_split", "write_split_manifest", "read_split_manifest", "manifest_hash", "check_train_only",
    "default_cache_dir", "ImageCache", "split_arrays", "training_set", "make_demo", "TrainingSet",
]
