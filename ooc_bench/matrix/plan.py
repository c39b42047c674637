"""Expand a benchmark spec into a graph of cached jobs: fit → sample → (score, classifier cells), each keyed by a hash of its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hashing import config_hash
from .quality import domain_params, needs_domain, quality_settings
from .spec import BASELINE, BenchmarkSpec

STAGE_ORDER = ("fit", "domain", "sample", "score", "cell")


@dataclass(frozen=True)
class Job:
    """One serialisable unit of work. ``key`` hashes everything that determines its result."""

    kind: str
    key: str
    label: str
    params: dict[str, Any] = field(hash=False, compare=False)
    deps: tuple[str, ...] = ()


@dataclass
class SplitInfo:
    """The split every stage reads: its manifest file, its content hash and the class counts of the train split."""

    manifest: str
    key: str
    classes: list[str]
    train_counts: dict[str, int]


@dataclass
class Plan:
    """All jobs of a run, in dependency order."""

    jobs: list[Job]

    def by_kind(self, kind: str) -> list[Job]:
        return [j for j in self.jobs if j.kind == kind]

    def waves(self) -> list[list[Job]]:
        """Jobs grouped so that every job's dependencies are in an earlier wave (the domain network trains with the fits)."""
        return [w for w in (self.by_kind("fit") + self.by_kind("domain"), self.by_kind("sample"),
                            self.by_kind("score") + self.by_kind("cell")) if w]


def synthetic_counts(protocol: str, ratio: float, train_counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(real images kept, synthetic images added) per class for one protocol and ratio.

    add: all real + round(r·n_c) synthetic; replace: the same total, a share r synthetic;
    synthetic-only: no real, round(r·n_c) synthetic (r = 1: as many as the real set).
    """
    real, syn = {}, {}
    for c, n in train_counts.items():
        if protocol == "add":
            real[c], syn[c] = n, int(round(ratio * n))
        elif protocol == "replace":
            syn[c] = int(round(ratio * n))
            real[c] = n - syn[c]
        elif protocol == "synthetic-only":
            real[c], syn[c] = 0, int(round(ratio * n))
        else:
            raise ValueError(protocol)
    return real, syn


def train_config(spec: BenchmarkSpec, model_config: dict[str, Any], model: str) -> dict[str, Any]:
    """The classifier recipe of one model: the spec's [training] defaults, then the model's own table."""
    cfg = {**spec.training, **model_config, "model": model, "img_size": spec.image_size}
    return cfg


def build_plan(spec: BenchmarkSpec, split: SplitInfo, device_kind: str | None = None) -> Plan:
    """Every fit, sample, score and cell job of the spec on this split, with content-derived keys.

    Keys hash the *resolved* configs (matrix/resolve.py): generator settings after their "auto"/device
    resolution for ``device_kind`` (default: this machine's), classifier recipes with every default filled in.
    The device kind is recorded in every job's params, not hashed; a cell's numerics (fp32 on a CPU, mixed
    precision on CUDA) are hashed, since they change its numbers.
    """
    from .resolve import default_device_kind, resolve_generator, resolve_training, training_numerics

    kind = device_kind or default_device_kind()
    jobs: list[Job] = []
    size = spec.image_size
    sample_of: dict[tuple[str, int], Job] = {}
    # one fit + sample per generator seed used by some classifier seed (paired by position)
    gen_seeds = list(dict.fromkeys(spec.generator_seed_of(i) for i in range(len(spec.seeds))))
    for g, gseed in ((g, gs) for g in spec.generators for gs in gen_seeds):
        tag = f" · gen seed {gseed}" if len(gen_seeds) > 1 else ""
        resolved, hashed = resolve_generator(g.type, g.config, kind)  # what runs, and what of it is hashed
        fit_params = {"generator": g.label, "type": g.type, "config": resolved, "seed": gseed,
                      "size": size, "split_key": split.key, "optional": g.optional}
        fit = Job("fit", config_hash({"stage": "fit", **{k: v for k, v in fit_params.items() if k != "optional"},
                                      "config": hashed}),
                  f"fit {g.label}{tag}", {**fit_params, "device_kind": kind})
        need: dict[str, int] = {c: 0 for c in split.classes}
        for protocol in spec.protocols:
            for r in spec.ratios_for(protocol):
                _, syn = synthetic_counts(protocol, r, split.train_counts)
                for c, n in syn.items():
                    need[c] = max(need[c], n)
        per_image = int(g.config.get("per_image", 0) or 0)  # sd-img2img: K variants of every real training image
        for c in need:
            need[c] = max(need[c], per_image * split.train_counts[c])
        if spec.quality.get("enabled", True):
            for c in need:  # quality needs a few images per class even when no cell needs them
                need[c] = max(need[c], min(split.train_counts[c], 16))
        # the default generator seed (= fit_seed) samples with sample_seed; every other one with its own offset
        sample_params = {"generator": g.label, "fit_key": fit.key, "n_per_class": need,
                         "seed": spec.sample_seed + (gseed - spec.fit_seed), "size": size}
        sample = Job("sample", config_hash({"stage": "sample", **sample_params}), f"sample {g.label}{tag}",
                     {**sample_params, "optional": g.optional, "generator_seed": gseed}, (fit.key,))  # optional: skipped, not failed
        jobs += [fit, sample]
        sample_of[(g.label, gseed)] = sample

    if spec.quality.get("enabled", True):
        q = quality_config(spec)
        # one domain network per run (features and/or class-fidelity judge), trained on the train split only
        domain = None
        if needs_domain(q):
            dparams = {**domain_params(q, split.key, size), "split_key": split.key}
            domain = Job("domain", config_hash({"stage": "domain", **dparams}), "train domain network", dparams)
            jobs.append(domain)
        dkey = domain.key if domain else None
        # every distance of quality.csv is computed at the same n: per class, a share of the smallest of the
        # reference, the floor set and the synthetic set (the same n_per_class for every generator)
        n_fake = next((s.params["n_per_class"] for s in sample_of.values()), None)
        common = {"quality": q, "split_key": split.key, "size": size, "domain_key": dkey, "n_fake_per_class": n_fake}
        deps = (dkey,) if dkey else ()
        if q.get("floor") not in (None, "none"):
            floor = f"real-{q['floor']}"  # a held-out real set scored like a generator: the floor at matched n
            ref_params = {"generator": floor, "sample_key": None, "floor_split": q["floor"], **common}
            jobs.append(Job("score", config_hash({"stage": "score", **ref_params}), f"score {floor} (floor)", ref_params, deps))
        for (label, gseed), sample in sample_of.items():
            if gseed != gen_seeds[0]:
                continue  # quality.csv scores the first generator seed's sample set
            params = {"generator": label, "sample_key": sample.key, **common}
            jobs.append(Job("score", config_hash({"stage": "score", **params}), f"score {label}", params, (sample.key, *deps)))

    for m in spec.models:
        tcfg = resolve_training(train_config(spec, m.config, m.model))  # every option, defaults filled in
        for seed_index, seed in enumerate(spec.seeds):
            base = {"model": m.label, "train_config": tcfg, "numerics": training_numerics(tcfg, kind),
                    "generator": BASELINE, "sample_key": None, "protocol": "none",
                    "ratio": 0.0, "seed": seed, "split_key": split.key, "n_real": split.train_counts,
                    "n_synthetic": {c: 0 for c in split.classes}}
            jobs.append(Job("cell", config_hash({"stage": "cell", **base}), f"{m.label} · {BASELINE} · seed {seed}",
                            {**base, "device_kind": kind}))
            gseed = spec.generator_seed_of(seed_index)
            for (label, gs), sample in sample_of.items():
                if gs != gseed:
                    continue
                for protocol in spec.protocols:
                    for r in spec.ratios_for(protocol):
                        if r == 0:
                            continue  # the real-only baseline above
                        real, syn = synthetic_counts(protocol, r, split.train_counts)
                        params = {**base, "generator": label, "sample_key": sample.key, "protocol": protocol,
                                  "ratio": r, "n_real": real, "n_synthetic": syn}
                        # the sample key already identifies the generator fit: generator_seed is a label, not a key part
                        tag = f" · gen seed {gseed}" if len(gen_seeds) > 1 else ""
                        jobs.append(Job("cell", config_hash({"stage": "cell", **params}),
                                        f"{m.label} · {label} · {protocol} {r:g} · seed {seed}{tag}",
                                        {**params, "generator_seed": gseed, "device_kind": kind}, (sample.key,)))
    return Plan(jobs)


def quality_config(spec: BenchmarkSpec) -> dict[str, Any]:
    """The scoring settings with their defaults filled in (part of every score key): matrix/quality.py's QUALITY_DEFAULTS."""
    return quality_settings(spec.quality)
