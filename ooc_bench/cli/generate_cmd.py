"""CLI command `ooc-bench generate`: fit any generator on the train split only, save it, sample N images per class."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import UserInputError

# CLI option -> generator keyword (only options the user actually gave are passed on)
OPTION_KEYS = {"--resolution": "resolution", "--kimg": "kimg", "--gan-pkl": "gan_pkl", "--sd-model": "sd_model",
               "--strength": "strength", "--steps": "steps", "--seed": "seed", "--path": "path"}
SOFT_KEYS = {"seed"}  # also the sampling seed: silently not passed to generators that have no training seed


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> dict; values are JSON-parsed when possible (numbers, true/false, null, lists, dicts)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UserInputError(f"--param {item!r}: expected KEY=VALUE (e.g. --param guidance_scale=29)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_generator(name: str, config: dict[str, Any], given: dict[str, str]) -> Any:
    """``create_generator(name, **config)``; an option the generator does not take becomes a clear error.

    ``given`` maps config keys to the CLI flag that set them (for the message); keys in ``SOFT_KEYS`` that
    the generator does not accept are dropped instead.
    """
    from ..generators import create_generator, resolve_generator_name

    canonical = resolve_generator_name(name)
    config = dict(config)
    while True:
        try:
            return create_generator(canonical, **config)
        except TypeError as exc:
            m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if not m or m.group(1) not in config:
                raise
            key = m.group(1)
            if key in SOFT_KEYS:
                config.pop(key)
                continue
            raise UserInputError(f"generator {canonical!r} has no option {given.get(key, key)!r}; "
                                 f"see docs for its keywords (pass them with --param KEY=VALUE)") from None


def load_split_dataset(data: Optional[Path], layout: Optional[str], split: Optional[Path], console: Any = None) -> Any:
    """The dataset with a train/val/test split: ``--split`` manifest, a pre-split layout, or a fresh seeded split."""
    from ..data import open_split

    ds, made = open_split(data, layout=layout, split=split)
    if made and console is not None:
        console.print("[yellow]note:[/] the dataset has no split; made a stratified one (seed 0). For a split "
                      "shared by all stages run `ooc-bench data split` and pass --split.", highlight=False)
    return ds


def run_generate(generator: str, data: Optional[Path], out: Path, layout: Optional[str] = None,
                 split: Optional[Path] = None, per_class: Optional[int] = None, per_image: Optional[int] = None,
                 size: int = 128, seed: int = 0, options: Optional[dict[str, Any]] = None,
                 params: Optional[dict[str, Any]] = None, console: Any = None) -> dict[str, Any]:
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
    for flag, v in (("--per-class", per_class), ("--per-image", per_image), ("--size", size)):
        if v is not None and v < 1:
            raise UserInputError(f"{flag} {v}: must be at least 1")
    given = {OPTION_KEYS[f]: f for f in OPTION_KEYS if OPTION_KEYS[f] in (options or {})}
    config = {**(options or {}), **(params or {})}
    gen = build_generator(generator, config, given)  # unknown names/options fail before any data is read
    ds = load_split_dataset(data, layout, split, console)
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
        split: Optional[Path] = typer.Option(None, "--split", help="Split manifest from `ooc-bench data split`."),
        per_class: Optional[int] = typer.Option(None, "--per-class", help="Synthetic images per class."),
        per_image: Optional[int] = typer.Option(None, "--per-image", help="Synthetic images per real training image (default 1)."),
        size: int = typer.Option(128, "--size", help="Side of the written PNGs in pixels."),
        sd_model: Optional[str] = typer.Option(None, "--sd-model", help="sd/sd-img2img: hub id or local diffusers folder."),
        strength: Optional[float] = typer.Option(None, "--strength", help="sd-img2img: denoising strength (0.15); aug: augmentation strength."),
        steps: Optional[int] = typer.Option(None, "--steps", help="ddpm/sd: training steps; sd-img2img: sampler steps."),
        seed: int = typer.Option(0, "--seed", help="Training and sampling seed."),
        resolution: Optional[int] = typer.Option(None, "--resolution", help="Working resolution of the generator."),
        kimg: Optional[float] = typer.Option(None, "--kimg", help="gan: training length in thousands of images."),
        gan_pkl: Optional[Path] = typer.Option(None, "--gan-pkl", help="gan: pretrained StyleGAN2-ADA network to start from."),
        path: Optional[Path] = typer.Option(None, "--path", help="folder: DIR/<class>/ images made elsewhere."),
        param: list[str] = typer.Option([], "--param", help="Any generator keyword as KEY=VALUE (JSON-parsed), repeatable."),
    ) -> None:
        """Fit a generator on the train split only, save it and write N synthetic PNGs per class with a manifest."""
        from rich.console import Console

        given = {"resolution": resolution, "kimg": kimg, "gan_pkl": str(gan_pkl) if gan_pkl else None,
                 "sd_model": sd_model, "strength": strength, "steps": steps, "path": str(path) if path else None}
        options = {k: v for k, v in given.items() if v is not None}
        options["seed"] = seed
        console = Console()
        summary = run_generate(generator, data, out, layout=layout, split=split, per_class=per_class,
                               per_image=per_image, size=size, seed=seed, options=options,
                               params=parse_params(param), console=console)
        _print_summary(console, summary)
