"""Quality metrics of synthetic image sets: FID, KID, precision/recall/density/coverage, near-copy share."""

from .cache import FeatureCache
from .extractors import (
    DinoV2Extractor,
    DomainExtractor,
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
from .nearcopy import near_copy
from .prdc import prdc
from .score import METRICS, parse_metrics, rows_table, score, write_rows

__all__ = [
    "FeatureCache", "FeatureExtractor", "InceptionExtractor", "DomainExtractor", "DinoV2Extractor",
    "create_extractor", "list_extractors", "register_extractor", "resolve_extractor_name", "random_inception_weights",
    "resize_uint8", "frechet_distance", "feature_stats", "fid_from_features", "kid", "prdc", "near_copy", "score",
    "METRICS", "parse_metrics", "rows_table", "write_rows",
]
