"""Benchmark spec: a TOML file (plus CLI overrides) describing data, generators, models, protocols, ratios and seeds."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import check_table, parse_assignments
from ..errors import UserInputError
from ..tomlcompat import tomllib  # tomli on Python 3.10
from .spec_config import PROTOCOLS, SPEC_TABLES, SPLIT_POLICIES, THESIS_SEEDS, DataConfig, MatrixConfig, QualityConfig
from .stats import StatsConfig

BASELINE = "real-only"

_TOP_KEYS = {"name", "generators", "models", "training"} | set(SPEC_TABLES)  # each table's keys: matrix/spec_config.py



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


def apply_overrides(raw: dict[str, Any], items: list[str] | None, source: str = "--set") -> dict[str, Any]:
    """``--set TABLE.KEY=VALUE`` (or ``generators.LABEL.KEY``, ``models.LABEL.KEY``, ``name``) applied to a raw spec.

    Values are JSON-parsed (``0.5``, ``true``, ``[1, 2]``), else strings; labels may contain dots
    (``generators.img2img-s0.10.strength=0.2``: the key is the last part). Checked like the file itself.
    """
    raw = copy.deepcopy(raw)
    for dotted, value in parse_assignments(items or [], "--set").items():
        if dotted == "name":
            raw["name"] = value
            continue
        table, sep, rest = dotted.partition(".")
        if not sep or not rest:
            raise UserInputError(f"--set {dotted}=...: expected TABLE.KEY=VALUE, e.g. --set generators.gan.kimg=0.5 "
                                 f"or --set training.epochs=2 (tables: {', '.join(sorted(_TOP_KEYS - {'name'}))})")
        if table not in _TOP_KEYS - {"name"}:
            raise UserInputError(f"--set {dotted}: unknown table {table!r}; valid: {', '.join(sorted(_TOP_KEYS - {'name'}))}")
        if table in ("generators", "models"):
            label, dot, key = rest.rpartition(".")
            if not dot or not label:
                raise UserInputError(f"--set {dotted}: expected {table}.LABEL.KEY=VALUE (e.g. {table}."
                                     f"{'gan.kimg=0.5' if table == 'generators' else 'mnv2.epochs=2'})")
            raw.setdefault(table, {}).setdefault(label.strip('"'), {})[key] = value
        else:
            raw.setdefault(table, {})[rest] = value
    return raw


def load_spec(path: str | Path | None = None, *, data: str | None = None, generators: str | None = None,
              models: str | None = None, ratios: str | None = None, protocol: str | None = None,
              seeds: str | None = None, sd_model: str | None = None, name: str | None = None,
              overrides: list[str] | None = None, sd_config: str | None = None) -> BenchmarkSpec:
    """Read a spec file (or start from defaults) and apply CLI overrides; validate every name and key.

    ``generators``/``models`` select entries by label; a label not in the file is added with default config
    (``folder:DIR`` registers an external image folder). ``seeds`` is a count (``5``: the first five of the
    thesis seeds, then consecutive integers) or a list (``7921,2048``). ``overrides`` are ``--set`` items
    (``generators.gan.kimg=0.5``), applied to the file's tables before anything is checked.
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
    if overrides:
        raw = apply_overrides(raw, overrides)
    _unknown(set(raw), _TOP_KEYS, "the top level", source)
    for table in ("generators", "models"):
        for label, entry in dict(raw.get(table, {})).items():
            if not isinstance(entry, dict):
                raise UserInputError(f"{source}: [{table}] {label} = {entry!r}; expected a table [{table}.{label}]")
    spec = BenchmarkSpec(source=source)
    spec.name = str(raw.get("name", Path(path).stem if path else "run"))
    spec.data = check_table(DataConfig, dict(raw.get("data", {})), source, "[data]")  # keys, types, ranges
    mat = check_table(MatrixConfig, dict(raw.get("matrix", {})), source, "[matrix]")
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
    st = check_table(StatsConfig, dict(raw.get("stats", {})), source, "[stats]")
    try:
        spec.stats = StatsConfig(test=str(st.get("test", "sign-flip")), p_adjust=str(st.get("p_adjust", "holm")),
                                 alpha=float(st.get("alpha", 0.05)), bootstrap=int(st.get("bootstrap", 2000)),
                                 bootstrap_seed=int(st.get("bootstrap_seed", 0))).validate()
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{source}: {exc}") from None
    spec.training = dict(raw.get("training", {}))
    spec.quality = check_table(QualityConfig, dict(raw.get("quality", {})), source, "[quality]")
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
    if sd_config:  # the config folder of a single-file (web-UI) --sd-model checkpoint
        for g in spec.generators:
            if g.type in ("sd", "sd-img2img"):
                g.config["sd_config"] = sd_config
    validate_spec(spec)
    return spec


def validate_generators(spec: BenchmarkSpec) -> None:
    """Every generator table checked against its config dataclass and built once (cross-field checks, e.g.
    img2img's steps x strength); the tables keep the given keys, converted to their types."""
    from ..generators.registry import check_generator_config, resolve_generator_config

    for g in spec.generators:
        where = f"[generators.{g.label}]"
        g.config = check_generator_config(g.type, g.config, spec.source, where)
        resolve_generator_config(g.type, g.config, spec.source, where)


def validate_training(spec: BenchmarkSpec) -> None:
    """``[training]`` and every ``[models.X]`` checked against the classifier recipe (names, types, values)."""
    import dataclasses

    from ..classifiers import TrainConfig

    valid_train = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("model", "img_size")]
    src = spec.source
    for where, table in [("[training]", spec.training)] + [(f"[models.{m.label}]", m.config) for m in spec.models]:
        _unknown(set(table), set(valid_train), where, src)
        table.update(check_table(TrainConfig, table, src, where))
    for m in spec.models:
        cfg = TrainConfig(**{**spec.training, **m.config, "model": m.model})
        try:
            cfg.validate()
        except UserInputError as exc:
            raise UserInputError(f"{src}: [models.{m.label}] (with [training]): {exc}") from None


def validate_quality(spec: BenchmarkSpec) -> None:
    """``[quality]`` names checked against the extractor registry and the metric list (types: QualityConfig)."""
    if not spec.quality or not spec.quality.get("enabled", True):
        return
    from ..metrics import parse_metrics, resolve_extractor_name

    try:
        if "features" in spec.quality:
            resolve_extractor_name(spec.quality["features"])
        if "metrics" in spec.quality:
            parse_metrics(spec.quality["metrics"])
    except UserInputError as exc:
        raise UserInputError(f"{spec.source}: [quality] {exc}") from None


def validate_spec(spec: BenchmarkSpec) -> None:
    """Check names against the registries and values against their ranges; errors list the valid choices."""
    from ..classifiers import resolve_model_name
    from ..generators import resolve_generator_name

    src = spec.source
    if not spec.generators and not any(r == 0 for r in spec.ratios):
        raise UserInputError(f"{src}: no generators and no ratio 0: nothing to run; add --generators or ratio 0")
    for g in spec.generators:
        g.type = resolve_generator_name(g.type)
    validate_generators(spec)
    for m in spec.models:
        try:
            resolve_model_name(m.model)
        except Exception as exc:  # the classifier registry raises UserInputError listing valid names
            raise UserInputError(f"{src}: model {m.label!r}: {exc}") from None
    if not spec.models:
        raise UserInputError(f"{src}: no models; add a [models.NAME] table or --models mnv2,cnn")
    validate_training(spec)
    validate_quality(spec)
    for p in spec.protocols:
        if p not in PROTOCOLS:
            raise UserInputError(f"{src}: unknown protocol {p!r}; valid protocols: {', '.join(PROTOCOLS)}")
    for p in spec.protocols:
        for r in spec.ratios_for(p):
            if r < 0 or (r > 1 and p == "replace"):
                raise UserInputError(f"{src}: ratio {r} out of range for protocol {p} (add, synthetic-only: r >= 0; "
                                     "replace: 0 <= r <= 1)")
    if not spec.seeds:
        raise UserInputError(f"{src}: no seeds; use --n-seeds 5, --seeds 7921,2048 or --seed 42")
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
