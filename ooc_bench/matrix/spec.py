"""Benchmark spec: a TOML file (plus CLI overrides) describing data, generators, models, protocols, ratios and seeds."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from .stats import StatsConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROTOCOLS = ("add", "replace", "synthetic-only")
SPLIT_POLICIES = ("official", "stratified", "grouped")
THESIS_SEEDS = [7921, 2048, 1337, 9876, 5624]
BASELINE = "real-only"

_TOP_KEYS = {"name", "data", "generators", "models", "matrix", "quality", "training", "stats"}
_DATA_KEYS = {"path", "layout", "split", "group_by", "val", "test", "seed", "image_size", "datasheet"}
_MATRIX_KEYS = {"protocols", "ratios", "ratios_by_protocol", "seeds", "sample_seed", "fit_seed", "generator_seeds"}
_STATS_KEYS = {"test", "p_adjust", "alpha", "bootstrap", "bootstrap_seed"}
_QUALITY_KEYS = {"features", "metrics", "reference", "per_class", "k", "inception_weights", "dinov2_weights", "enabled",
                 "domain_model", "domain_epochs"}


@dataclass
class GeneratorEntry:
    """One generator column of the matrix: a label, its registry type, its config, and whether it may be skipped."""

    label: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    optional: bool = False


@dataclass
class ModelEntry:
    """One classifier row of the matrix: a label, its registry name and its training-config overrides."""

    label: str
    model: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkSpec:
    """The whole benchmark, after the TOML file and the CLI overrides have been merged and validated."""

    name: str = "benchmark"
    data: dict[str, Any] = field(default_factory=dict)
    generators: list[GeneratorEntry] = field(default_factory=list)
    models: list[ModelEntry] = field(default_factory=list)
    protocols: list[str] = field(default_factory=lambda: ["add"])
    ratios: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5])
    ratios_by_protocol: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: list(THESIS_SEEDS))
    sample_seed: int = 0
    fit_seed: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    generator_seeds: list[int] | None = None  # None: one fit per generator (fit_seed, sample_seed)
    stats: StatsConfig = field(default_factory=StatsConfig)
    source: str = "<defaults>"

    @property
    def image_size(self) -> int:
        return int(self.data.get("image_size", 64))

    def ratios_for(self, protocol: str) -> list[float]:
        """Ratios of one protocol (synthetic-only ignores 0: training on nothing is not a cell)."""
        ratios = self.ratios_by_protocol.get(protocol, self.ratios)
        if protocol == "synthetic-only":
            ratios = [r for r in ratios if r > 0] or [1.0]
        return [float(r) for r in ratios]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in provenance.json."""
        return {
            "name": self.name, "data": self.data,
            "generators": [vars(g) for g in self.generators], "models": [vars(m) for m in self.models],
            "protocols": self.protocols, "ratios": self.ratios, "ratios_by_protocol": self.ratios_by_protocol,
            "seeds": self.seeds, "sample_seed": self.sample_seed, "fit_seed": self.fit_seed,
            "training": self.training, "quality": self.quality, "source": self.source,
            "generator_seeds": self.generator_seeds, "stats": vars(self.stats),
        }

    def generator_seed_of(self, seed_index: int) -> int:
        """The generator seed paired with the classifier seed at ``seed_index`` (by position; one seed: all)."""
        gs = self.generator_seeds or [self.fit_seed]
        return int(gs[0] if len(gs) == 1 else gs[seed_index])


def _unknown(keys: set[str], valid: set[str], where: str, source: str) -> None:
    bad = sorted(set(keys) - valid)
    if bad:
        raise UserInputError(f"{source}: unknown key(s) {', '.join(bad)} in {where}; valid keys: {', '.join(sorted(valid))}")


def parse_list(text: str | None, kind: type = str) -> list[Any] | None:
    """Parse a comma-separated CLI list ('sd,gan' or '0,0.25'); None stays None."""
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        return [kind(t) for t in items]
    except ValueError as exc:
        raise UserInputError(f"could not read {text!r} as a comma-separated list of {kind.__name__}: {exc}") from None


def _generator_entry(label: str, table: dict[str, Any]) -> GeneratorEntry:
    table = dict(table)
    gtype = str(table.pop("type", label))
    optional = bool(table.pop("optional", False))
    if gtype.startswith("folder:"):
        table.setdefault("path", gtype.split(":", 1)[1])
        gtype = "folder"
    return GeneratorEntry(label=label, type=gtype, config=table, optional=optional)


def load_spec(path: str | Path | None = None, *, data: str | None = None, generators: str | None = None,
              models: str | None = None, ratios: str | None = None, protocol: str | None = None,
              seeds: str | None = None, sd_model: str | None = None, name: str | None = None) -> BenchmarkSpec:
    """Read a spec file (or start from defaults) and apply CLI overrides; validate every name and key.

    ``generators``/``models`` select entries by label; a label not in the file is added with default config
    (``folder:DIR`` registers an external image folder). ``seeds`` is a count (``5``: the first five of the
    thesis seeds, then consecutive integers) or a list (``7921,2048``).
    """
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserInputError(f"spec file {p} does not exist; see benchmarks/*.toml for examples")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(f"{p}: not valid TOML ({exc}); fix the file and run again") from None
        source = str(p)
    _unknown(set(raw), _TOP_KEYS, "the top level", source)
    spec = BenchmarkSpec(source=source)
    spec.name = str(raw.get("name", Path(path).stem if path else "run"))
    spec.data = dict(raw.get("data", {}))
    _unknown(set(spec.data), _DATA_KEYS, "[data]", source)
    mat = dict(raw.get("matrix", {}))
    _unknown(set(mat), _MATRIX_KEYS, "[matrix]", source)
    spec.protocols = list(mat.get("protocols", ["add"]))
    spec.ratios = [float(r) for r in mat.get("ratios", [0.0, 0.25, 0.5])]
    spec.ratios_by_protocol = {k: [float(r) for r in v] for k, v in dict(mat.get("ratios_by_protocol", {})).items()}
    spec.seeds = [int(s) for s in mat.get("seeds", THESIS_SEEDS)]
    spec.sample_seed = int(mat.get("sample_seed", 0))
    spec.fit_seed = int(mat.get("fit_seed", 0))
    if "generator_seeds" in mat:
        gs = mat["generator_seeds"]
        if not isinstance(gs, list) or not all(isinstance(g, int) and not isinstance(g, bool) for g in gs):
            raise UserInputError(f"{source}: [matrix] generator_seeds = {gs!r}; give a list of integers, e.g. [0, 1, 2]")
        spec.generator_seeds = [int(g) for g in gs]
    st = dict(raw.get("stats", {}))
    _unknown(set(st), _STATS_KEYS, "[stats]", source)
    try:
        spec.stats = StatsConfig(test=str(st.get("test", "sign-flip")), p_adjust=str(st.get("p_adjust", "holm")),
                                 alpha=float(st.get("alpha", 0.05)), bootstrap=int(st.get("bootstrap", 2000)),
                                 bootstrap_seed=int(st.get("bootstrap_seed", 0))).validate("[stats]")
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{source}: {exc}") from None
    spec.training = dict(raw.get("training", {}))
    spec.quality = dict(raw.get("quality", {}))
    _unknown(set(spec.quality), _QUALITY_KEYS, "[quality]", source)
    spec.generators = [_generator_entry(k, v) for k, v in dict(raw.get("generators", {})).items()]
    spec.models = []
    for label, table in dict(raw.get("models", {})).items():
        table = dict(table)
        spec.models.append(ModelEntry(label=label, model=str(table.pop("model", label)), config=table))

    # CLI overrides
    if name:
        spec.name = name
    if data:
        spec.data["path"] = data
    if generators is not None:
        by_label = {g.label: g for g in spec.generators}
        spec.generators = [copy.deepcopy(by_label[g]) if g in by_label else _generator_entry(g, {}) for g in parse_list(generators)]
    if models is not None:
        by_label_m = {m.label: m for m in spec.models}
        spec.models = [copy.deepcopy(by_label_m[m]) if m in by_label_m else ModelEntry(label=m, model=m) for m in parse_list(models)]
    if ratios is not None:
        spec.ratios = parse_list(ratios, float)
        spec.ratios_by_protocol = {}
    if protocol is not None:
        spec.protocols = parse_list(protocol)
    if seeds is not None:
        if "," not in seeds and seeds.strip().isdigit() and int(seeds) < 1000:
            n = int(seeds)
            spec.seeds = (THESIS_SEEDS + list(range(1, n)))[:n] if n > len(THESIS_SEEDS) else THESIS_SEEDS[:n]
        else:
            spec.seeds = parse_list(seeds, int)
    if sd_model:
        for g in spec.generators:
            if g.type in ("sd", "sd-img2img"):
                g.config["sd_model"] = sd_model
    validate_spec(spec)
    return spec


def validate_spec(spec: BenchmarkSpec) -> None:
    """Check names against the registries and values against their ranges; errors list the valid choices."""
    from ..classifiers import resolve_model_name
    from ..generators import resolve_generator_name

    src = spec.source
    if not spec.generators and not any(r == 0 for r in spec.ratios):
        raise UserInputError(f"{src}: no generators and no ratio 0: nothing to run; add --generators or ratio 0")
    for g in spec.generators:
        g.type = resolve_generator_name(g.type)
    for m in spec.models:
        try:
            resolve_model_name(m.model)
        except Exception as exc:  # the classifier registry raises UserInputError listing valid names
            raise UserInputError(f"{src}: model {m.label!r}: {exc}") from None
    if not spec.models:
        raise UserInputError(f"{src}: no models; add a [models.NAME] table or --models mnv2,cnn")
    import dataclasses

    from ..classifiers import TrainConfig

    valid_train = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "img_size"}
    for where, table in [("[training]", spec.training)] + [(f"[models.{m.label}]", m.config) for m in spec.models]:
        _unknown(set(table), valid_train, where, src)
    for p in spec.protocols:
        if p not in PROTOCOLS:
            raise UserInputError(f"{src}: unknown protocol {p!r}; valid protocols: {', '.join(PROTOCOLS)}")
    for p in spec.protocols:
        for r in spec.ratios_for(p):
            if r < 0 or (r > 1 and p == "replace"):
                raise UserInputError(f"{src}: ratio {r} out of range for protocol {p} (add, synthetic-only: r >= 0; "
                                     "replace: 0 <= r <= 1)")
    if not spec.seeds:
        raise UserInputError(f"{src}: no seeds; use --seeds 5 or --seeds 7921,2048")
    gs = spec.generator_seeds
    if gs is not None and (not gs or len(set(gs)) != len(gs) or (len(gs) != 1 and len(gs) < len(spec.seeds))):
        raise UserInputError(f"{src}: [matrix] generator_seeds = {gs}: give one seed, or at least as many distinct seeds "
                             f"as there are classifier seeds ({len(spec.seeds)}); they are paired by position")
    policy = spec.data.get("split", "official")
    if policy not in SPLIT_POLICIES:
        raise UserInputError(f"{src}: [data] split = {policy!r}; valid: {', '.join(SPLIT_POLICIES)}")
    if policy == "grouped" and not spec.data.get("group_by"):
        raise UserInputError(f"{src}: [data] split = 'grouped' needs group_by (e.g. 'date')")
    labels = [g.label for g in spec.generators]
    if len(set(labels)) != len(labels) or BASELINE in labels:
        raise UserInputError(f"{src}: generator labels must be unique and not {BASELINE!r}: {labels}")
