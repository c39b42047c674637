"""CLI commands: `ooc-bench data inspect | split | demo | cache` (registered on the main app by register())."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Read, check, split and cache image sets; make the demo dataset.", no_args_is_help=True,
                       rich_markup_mode=None)

LAYOUT_HELP = "folders | presplit | ooc | npz | csv | manifest (detected when omitted)"
PATH_HELP = "Dataset folder, .npz, CSV manifest or split manifest (or --data PATH)."
DATA_HELP = "The dataset (same as the positional PATH; the name every command uses)."


def _load(path: Path, layout: Optional[str], skip_bad: bool, datasheet: Optional[Path], accept_folder_labels: bool):
    from ..data import load_dataset

    return load_dataset(path, layout=layout, skip_bad=skip_bad, datasheet=str(datasheet) if datasheet else None,
                        accept_folder_labels=accept_folder_labels)


@data_app.command("inspect")
def inspect_cmd(
    path: Optional[Path] = typer.Argument(None, help=PATH_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    layout: Optional[str] = typer.Option(None, "--layout", help=LAYOUT_HELP),
    datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (and list them)."),
    accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels",
                                              help="Keep folder labels when the datasheet disagrees."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Show layout, classes, counts per split and class, image sizes and modes, groups and problems."""
    from ..data.checks import bit_depth_warnings
    from ..data.summary import summarize
    from ..errors import UserInputError
    from .options import dataset_path

    path = dataset_path(data, path, "data inspect")
    ds = _load(path, layout, skip_bad, datasheet, accept_folder_labels)
    info = summarize(ds)
    info["warnings"] = list(info["warnings"]) + bit_depth_warnings(ds.records)
    if as_json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        _print_summary(info)
    if ds.problems:
        raise UserInputError(f"{len(ds.problems)} problem(s) in {ds.root}: " + " | ".join(ds.problems)
                             + " (to split anew: `ooc-bench data split PATH --resplit --out SPLIT.csv`)")


def _print_summary(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{info['root']}[/]  layout [cyan]{info['layout']}[/], {info['n_images']} images, "
                  f"{info['unique_hashes']} distinct contents, classes: {', '.join(info['classes'])}", highlight=False)
    table = Table(title="images per split and class")
    table.add_column("split")
    for c in info["classes"]:
        table.add_column(c, justify="right")
    table.add_column("total", justify="right")
    for split, counts in info["counts"].items():
        table.add_row(split, *[str(counts.get(c, 0)) for c in info["classes"]], str(sum(counts.values())))
    console.print(table)
    sizes = ", ".join(f"{k} ({v})" for k, v in list(info["image_sizes"].items())[:6])
    console.print(f"sizes: {sizes}" + (" ..." if len(info["image_sizes"]) > 6 else ""), highlight=False)
    console.print("modes: " + ", ".join(f"{k} ({v})" for k, v in info["modes"].items()), highlight=False)
    for key, g in info["groups"].items():
        extra = ""
        if "in_several_splits" in g:
            extra = f", {g['in_several_splits']} in more than one split"
            if g["examples"]:
                extra += f" (e.g. {', '.join(g['examples'][:3])})"
        console.print(f"groups by {key}: {g['distinct']} distinct{extra}", highlight=False)
    for w in info["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    for p in info["problems"]:
        console.print(f"[red]problem:[/] {p}", highlight=False, soft_wrap=True)


@data_app.command("split")
def split_cmd(
    path: Optional[Path] = typer.Argument(None, help="Dataset folder, .npz or CSV manifest (or --data PATH)."),
    out: Path = typer.Option(..., "--out", help="Split manifest CSV to write."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    layout: Optional[str] = typer.Option(None, "--layout", help=LAYOUT_HELP),
    group_by: Optional[str] = typer.Option(None, "--group-by",
                                           help="Make a new split that keeps groups together: date, group or any "
                                                "metadata column (replaces an existing split)."),
    val: float = typer.Option(0.15, "--val", help="Validation fraction (of all images)."),
    test: float = typer.Option(0.2, "--test", help="Test fraction (of all images)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the split."),
    resplit: bool = typer.Option(False, "--resplit", help="Ignore an existing (official) split and split anew."),
    datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (and list them)."),
    accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels",
                                              help="Keep folder labels when the datasheet disagrees."),
) -> None:
    """Write a stratified (optionally group-aware) train/val/test split manifest that every later stage reads.

    An existing (official) split is kept unless --resplit or --group-by asks for a new one.
    """
    from rich.console import Console

    from ..atomic import check_writable
    from ..data import make_split, manifest_hash, write_split_manifest
    from ..data.split import split_summary
    from .options import dataset_path

    path = dataset_path(data, path, "data split")
    check_writable(out, "--out")
    ds = _load(path, layout, skip_bad, datasheet, accept_folder_labels)
    keep = not resplit and group_by is None  # --group-by asks for exactly that split: never keep another one
    split = make_split(ds, group_by=group_by, val=val, test=test, seed=seed, keep_official=keep)
    write_split_manifest(split, out)
    console = Console(stderr=True)
    kept = "kept the existing split" if ds.has_splits and keep else f"new split (seed {seed})"
    counts = "; ".join(f"{s}: " + ", ".join(f"{c} {n}" for c, n in cs.items()) for s, cs in split_summary(split).items())
    console.print(f"wrote {out} ({len(split.records)} images, {kept}"
                  f"{', grouped by ' + group_by if group_by else ''}; {counts}; manifest hash {manifest_hash(split)})",
                  highlight=False, soft_wrap=True)
    for w in split.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


@data_app.command("demo")
def demo_cmd(
    out: Path = typer.Argument(..., help="Folder to write the demo dataset into."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed -> byte-identical files)."),
    n_images: int = typer.Option(480, "--n-images", help="Number of images."),
    output_size: Optional[int] = typer.Option(None, "--output-size", help="Image width in pixels (4:3 aspect; default 128)."),
    size_old: Optional[int] = typer.Option(None, "--size", hidden=True, help="Deprecated: --output-size."),
    full_size: bool = typer.Option(False, "--full-size", help="Full OOC size: 2056x1542 grey / 2048x1536 colour."),
) -> None:
    """Generate the built-in demo dataset (good vs bad cultures) in the OOC layout."""
    from rich.console import Console

    from ..atomic import check_writable
    from ..data import make_demo
    from .options import alias

    size = alias(output_size, size_old, "--output-size", "--size", default=128)
    check_writable(out, "OUT")

    root = make_demo(out, seed=seed, n_images=n_images, size=size, full_size=full_size)
    Console(stderr=True).print(f"wrote {n_images} demo images and OOC_datasheet.csv to {root}", highlight=False)


@data_app.command("cache")
def cache_cmd(
    path: Optional[Path] = typer.Argument(None, help="Split manifest (or any dataset; or --data PATH)."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    working_size: Optional[int] = typer.Option(None, "--working-size", help="Working size in px to decode at."),
    size_old: Optional[int] = typer.Option(None, "--size", hidden=True, help="Deprecated: --working-size."),
    channels: str = typer.Option("rgb", "--channels", help="rgb or gray."),
    layout: Optional[str] = typer.Option(None, "--layout", help=LAYOUT_HELP),
) -> None:
    """Decode every image once at the working size into the cache ($OOC_BENCH_CACHE or ~/.cache/ooc-bench)."""
    from rich.console import Console

    from ..atomic import check_writable
    from ..data import ImageCache, default_cache_dir, load_dataset
    from ..errors import UserInputError
    from .options import alias, dataset_path

    path = dataset_path(data, path, "data cache")
    size = alias(working_size, size_old, "--working-size", "--size")
    if size is None:
        raise UserInputError("pass --working-size N (the size in px every stage decodes at)")
    check_writable(default_cache_dir(), "the image cache ($OOC_BENCH_CACHE)")
    cache = ImageCache()
    cache.check_request(size, channels)  # before reading (and hashing) the dataset
    n = cache.ensure(load_dataset(path, layout=layout).records, size, channels)
    Console(stderr=True).print(f"decoded {n} new image(s) at {size}px into {cache.root}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(data_app, name="data")
