"""Quality metrics of synthetic image sets: FD/FID, KID, precision/recall/density/coverage, near-copy share, class fidelity."""

from .cache import FeatureCache, cache_id, numerics
from .domain import DomainExtractor, Embedder
from .extractors import (
    DinoV2Extractor,
    FeatureExtractor,
    InceptionExtractor,
    create_extractor,
    list_extractors,
    random_inception_weights,
    register_extractor,
    resize_uint8,
    resolve_extractor_name,
)
from .frechet import feature_stats, fid_from_features, frechet_distance
from .kid import kid
from .nearcopy import near_copy, near_copy_spaces
from .prdc import prdc
from .fidelity import class_fidelity
from .score import DEFAULT_METRICS, METRICS, identity, is_standard_inception, parse_metrics, rows_table, score, write_rows
from .subsets import fd_infinity, matched_size, subsampled

__all__ = [
    "FeatureCache", "FeatureExtractor", "InceptionExtractor", "DomainExtractor", "DinoV2Extractor",
    "create_extractor", "list_extractors", "register_extractor", "resolve_extractor_name", "random_inception_weights",
    "resize_uint8", "frechet_distance", "feature_stats", "fid_from_features", "kid", "prdc", "near_copy", "score",
    "METRICS", "parse_metrics", "rows_table", "write_rows", "Embedder", "cache_id", "numerics", "class_fidelity",
    "DEFAULT_METRICS", "identity", "is_standard_inception", "fd_infinity", "matched_size", "subsampled",
    "near_copy_spaces",
]
