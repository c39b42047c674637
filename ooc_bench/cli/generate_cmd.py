"""CLI command `ooc-bench generate`: fit any generator on the train split only, save it, sample N images per class."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import UserInputError

# CLI option -> generator keyword (only options the user actually gave are passed on)
OPTION_KEYS = {"--working-size": "resolution", "--kimg": "kimg", "--gan-pkl": "gan_pkl", "--sd-model": "sd_model",
               "--sd-config": "sd_config", "--strength": "strength", "--steps": "steps", "--seed": "seed", "--path": "path"}
SOFT_KEYS = {"seed"}  # also the sampling seed: silently not passed to generators that have no training seed


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> dict; values are JSON-parsed when possible (numbers, true/false, null, lists, dicts)."""
    from ..config import parse_assignments

    out = parse_assignments(items, "--param")
    bad = [k for k in out if not k.replace("-", "_").isidentifier()]
    if bad:
        raise UserInputError(f"--param {bad[0]!r}: expected KEY=VALUE (e.g. --param guidance_scale=29)")
    return {k.replace("-", "_"): v for k, v in out.items()}


def build_generator(name: str, config: dict[str, Any], given: dict[str, str]) -> Any:
    """``create_generator(name, **config)`` after checking every key and value against the generator's dataclass.

    ``given`` maps config keys to the CLI flag that set them (for the message); keys in ``SOFT_KEYS`` that
    the generator does not have are dropped instead (``--seed`` is also the sampling seed).
    """
    import dataclasses

    from ..generators import create_generator, resolve_generator_name
    from ..generators.registry import generator_config_class

    canonical = resolve_generator_name(name)
    config = dict(config)
    cls = generator_config_class(canonical)
    if cls is not None:
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in SOFT_KEYS & set(config):
            if key not in valid:
                config.pop(key)
        unknown = [k for k in config if k not in valid]
        if unknown:
            raise UserInputError(f"generator {canonical!r} has no option {given.get(unknown[0], unknown[0])!r}; "
                                 f"its options: {', '.join(valid)} (pass them with --param KEY=VALUE; "
                                 f"`ooc-bench list --generators` shows defaults)")
    return create_generator(canonical, **config)


def load_split_dataset(data: Optional[Path], layout: Optional[str], split: Optional[Path], console: Any = None,
                       **load: Any) -> Any:
    """The dataset with a train/val/test split: ``--split-manifest``, a pre-split layout, or a fresh seeded split.

    ``load``: ``skip_bad``, ``datasheet``, ``accept_folder_labels`` (as in ``load_dataset``)."""
    from ..data import open_split

    ds, made = open_split(data, layout=layout, split=split, **load)
    if made and console is not None:
        console.print("[yellow]note:[/] the dataset has no split; made a stratified one (seed 0). For a split "
                      "shared by all stages run `ooc-bench data split` and pass --split-manifest.", highlight=False)
    return ds


def run_generate(generator: str, data: Optional[Path], out: Path, layout: Optional[str] = None,
                 split: Optional[Path] = None, per_class: Optional[int] = None, per_image: Optional[int] = None,
                 size: int = 128, seed: int = 0, options: Optional[dict[str, Any]] = None,
                 params: Optional[dict[str, Any]] = None, console: Any = None,
                 load: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """What ``ooc-bench generate`` does: fit on the train split only, save to ``OUT/generator``, sample into ``OUT``.

    ``options`` are generator keywords from named CLI options (only those given), ``params`` those from
    ``--param``. Returns the summary also written to ``OUT/generate.json``.
    """
    from ..atomic import write_json
    from ..data import manifest_hash, training_set, write_split_manifest
    from ..data.progress import progress_bar
    from ..runtime import versions

    if per_class is not None and per_image is not None:
        raise UserInputError("pass either --per-class N or --per-image K, not both")
    for flag, v in (("--per-class", per_class), ("--per-image", per_image), ("--output-size", size)):
        if v is not None and v < 1:
            raise UserInputError(f"{flag} {v}: must be at least 1")
    given = {OPTION_KEYS[f]: f for f in OPTION_KEYS if OPTION_KEYS[f] in (options or {})}
    config = {**(options or {}), **(params or {})}
    gen = build_generator(generator, config, given)  # unknown names/options fail before any data is read
    ds = load_split_dataset(data, layout, split, console, **(load or {}))
    train = training_set(ds)  # the leakage guard runs here: only train images are ever decoded
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_split_manifest(ds, out / "split.csv")

    t0 = time.perf_counter()
    gen.fit(train, workdir=out / ".work")
    fit_s = time.perf_counter() - t0
    gen.save(out / "generator")

    counts_train = {c: int((train.labels == i).sum()) for i, c in enumerate(train.classes)}
    if per_class is not None:
        n = {c: int(per_class) for c in train.classes}
    elif per_image is not None:
        n = {c: int(per_image) * k for c, k in counts_train.items()}
    elif int(gen.config.get("per_image") or 0) > 0:  # sd-img2img per_image: K variants of every training image
        n = {c: int(gen.config["per_image"]) * k for c, k in counts_train.items()}
    elif hasattr(gen, "available"):
        n = dict(gen.available())
    else:
        n = dict(counts_train)
    t0 = time.perf_counter()
    total = sum(n.values())
    with progress_bar("sampling", total, min_total=1) as advance:  # every image may take seconds (sd, ddpm)
        samples = gen.sample(n, out, seed=seed, size=size, progress=advance)
    sample_s = time.perf_counter() - t0
    summary = {"generator": gen.name, "config": gen.config, "config_hash": gen.config_hash, "classes": gen.classes,
               "train_images": counts_train, "synthetic_images": n, "seed": seed, "size": size,
               "data": str(data) if data else None, "split_hash": manifest_hash(ds), "fit_seconds": round(fit_s, 3),
               "sample_seconds": round(sample_s, 3), "images_per_second": round(total / sample_s, 3) if sample_s else None,
               "sample_set_hash": samples.content_hash(), "out": str(out), "versions": versions()}
    stats = getattr(gen, "train_stats", None)
    if stats:
        summary["train_stats"] = stats
    write_json(out / "generate.json", summary)
    return summary


def _print_summary(console: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"ooc-bench generate: {s['generator']} ({s['config_hash']})")
    table.add_column("class")
    table.add_column("train images", justify="right")
    table.add_column("synthetic images", justify="right")
    for c in s["classes"]:
        table.add_row(c, str(s["train_images"].get(c, 0)), str(s["synthetic_images"].get(c, 0)))
    console.print(table)
    rate = f", {s['images_per_second']:.2f} images/s" if s.get("images_per_second") else ""
    console.print(f"fit {s['fit_seconds']:.1f} s, sampling {s['sample_seconds']:.1f} s{rate}; "
                  f"{s['size']} px PNGs + manifest.csv in [bold]{s['out']}[/], generator saved in {s['out']}/generator",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("generate")
    def generate(
        generator: str = typer.Option(..., "--generator", "-g", help="aug | gan | ddpm | sd | sd-img2img | folder (or an alias)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder, .npz or CSV (see `ooc-bench data inspect`)."),
        out: Path = typer.Option(..., "--out", help="Output folder: OUT/<class>/*.png, manifest.csv, generator/, .work/."),
        layout: Optional[str] = typer.Option(None, "--layout", help="Dataset layout (detected when omitted)."),
        split_manifest: Optional[Path] = typer.Option(None, "--split-manifest", help="Split manifest from `ooc-bench data split`."),
        split_old: Optional[Path] = typer.Option(None, "--split", hidden=True, help="Deprecated: --split-manifest."),
        per_class: Optional[int] = typer.Option(None, "--per-class", help="Synthetic images per class."),
        per_image: Optional[int] = typer.Option(None, "--per-image", help="Synthetic images per real training image (default 1)."),
        output_size: Optional[int] = typer.Option(None, "--output-size", help="Side of the written PNGs in pixels (default 128)."),
        size_old: Optional[int] = typer.Option(None, "--size", hidden=True, help="Deprecated: --output-size."),
        sd_model: Optional[str] = typer.Option(None, "--sd-model", help="sd/sd-img2img: hub id, local diffusers folder or web-UI checkpoint file (.safetensors/.ckpt)."),
        sd_config: Optional[Path] = typer.Option(None, "--sd-config", help="sd/sd-img2img with a checkpoint file: local diffusers folder with its configs and tokenizer (loads offline)."),
        strength: Optional[float] = typer.Option(None, "--strength", help="sd-img2img: denoising strength (0.15); aug: augmentation strength."),
        steps: Optional[int] = typer.Option(None, "--steps", help="ddpm/sd: training steps; sd-img2img: sampler steps."),
        seed: int = typer.Option(0, "--seed", help="Training and sampling seed."),
        working_size: Optional[int] = typer.Option(None, "--working-size", help="Working size in px the generator is trained at (its `resolution`)."),
        resolution_old: Optional[int] = typer.Option(None, "--resolution", hidden=True, help="Deprecated: --working-size."),
        kimg: Optional[float] = typer.Option(None, "--kimg", help="gan: training length in thousands of images."),
        gan_pkl: Optional[Path] = typer.Option(None, "--gan-pkl", help="gan: pretrained StyleGAN2-ADA network to start from."),
        path: Optional[Path] = typer.Option(None, "--path", help="folder: DIR/<class>/ images made elsewhere."),
        param: list[str] = typer.Option([], "--param", help="Any generator keyword as KEY=VALUE (JSON-parsed), repeatable."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (listed) instead of stopping."),
        datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join."),
        accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels", help="Keep folder labels when the datasheet disagrees."),
    ) -> None:
        """Fit a generator on the train split only, save it and write N synthetic PNGs per class with a manifest."""
        from rich.console import Console

        from ..atomic import check_writable
        from .options import alias

        split = alias(split_manifest, split_old, "--split-manifest", "--split")
        size = alias(output_size, size_old, "--output-size", "--size", default=128)
        resolution = alias(working_size, resolution_old, "--working-size", "--resolution")
        check_writable(out, "--out")  # before the generator is fitted
        given = {"resolution": resolution, "kimg": kimg, "gan_pkl": str(gan_pkl) if gan_pkl else None,
                 "sd_model": sd_model, "sd_config": str(sd_config) if sd_config else None, "strength": strength,
                 "steps": steps, "path": str(path) if path else None}
        options = {k: v for k, v in given.items() if v is not None}
        options["seed"] = seed
        console = Console()
        summary = run_generate(generator, data, out, layout=layout, split=split, per_class=per_class,
                               per_image=per_image, size=size, seed=seed, options=options,
                               params=parse_params(param), console=console,
                               load={"skip_bad": skip_bad, "datasheet": datasheet,
                                     "accept_folder_labels": accept_folder_labels})
        _print_summary(console, summary)
