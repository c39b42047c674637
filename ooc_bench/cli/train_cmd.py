"""CLI commands: train, list, export, predict (registered on the main app by register())."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _pretrained_value(no_pretrained: bool, pretrained_optional: bool) -> bool | str:
    if no_pretrained:
        return False
    return "optional" if pretrained_optional else True


def train(
    data: Path = typer.Option(..., "--data", help="Dataset folder or file (any layout the data layer reads)."),
    layout: Optional[str] = typer.Option(None, "--layout", help="folders | presplit | ooc | npz | csv | manifest (detected when omitted)."),
    split_manifest: Optional[Path] = typer.Option(None, "--split-manifest", help="Split manifest CSV (`ooc-bench data split`); else the dataset's own split, else a new stratified split with --seed."),
    split_old: Optional[Path] = typer.Option(None, "--split", hidden=True, help="Deprecated: --split-manifest."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (listed) instead of stopping."),
    datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join."),
    accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels", help="Keep folder labels when the datasheet disagrees."),
    model: str = typer.Option("mnv2", "--model", help="Alias (see `ooc-bench list`) or any timm model name."),
    mode: str = typer.Option("two-stage", "--mode", help="linear | finetune | two-stage."),
    epochs: int = typer.Option(10, "--epochs", help="Epochs in total (two-stage: split between the stages)."),
    stage1_epochs: Optional[int] = typer.Option(None, "--stage1-epochs", help="two-stage: frozen-backbone epochs (default half)."),
    working_size: Optional[int] = typer.Option(None, "--working-size", help="Square input size in px (default: the model's)."),
    img_size_old: Optional[int] = typer.Option(None, "--img-size", hidden=True, help="Deprecated: --working-size."),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate (two-stage: stage 2 uses lr/10)."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw | sgd | rmsprop."),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine | plateau | none."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay"),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing"),
    class_weighted: bool = typer.Option(False, "--class-weighted", help="Weight the loss by inverse class frequency."),
    early_stopping: str = typer.Option("accuracy", "--early-stopping", help="Validation metric to monitor (accuracy, balanced_accuracy, f1_macro, roc_auc, loss) or none."),
    patience: int = typer.Option(5, "--patience"),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Flips, 90° rotations, small affine on the device."),
    color_jitter: float = typer.Option(0.0, "--color-jitter", help="Brightness/contrast jitter strength (0 = off)."),
    head: str = typer.Option("linear", "--head", help="linear (the model's own) | bn-dropout (GAP → BatchNorm → Dropout → Dense)."),
    drop_rate: Optional[float] = typer.Option(None, "--drop-rate", help="Dropout before the classifier (default: the model's; bn-dropout 0.5)."),
    in_chans: int = typer.Option(3, "--in-chans", help="3 (greyscale replicated) or 1 (timm adapts the first conv)."),
    seed: int = typer.Option(0, "--seed"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local weights file (.safetensors/.pth) or JSON mapping model → file."),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Random initialisation (no ImageNet weights)."),
    pretrained_optional: bool = typer.Option(False, "--pretrained-optional", help="Use ImageNet weights when obtainable, else random init."),
    extra_train: Optional[Path] = typer.Option(None, "--extra-train", help="Folder of extra labelled training images in class folders (e.g. synthetic)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 or fp16)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/train/<model>-seed<seed>)."),
    plots: bool = typer.Option(False, "--plots/--no-plots", help="Also write curves.png (loss and accuracy per epoch)."),
    plot_old: bool = typer.Option(False, "--plot", hidden=True, help="Deprecated: --plots."),
    param: list[str] = typer.Option([], "--param", help="Any training option as KEY=VALUE (e.g. stage2_lr_factor=0.05), repeatable; `ooc-bench list --options`."),
) -> None:
    """Train a classifier on the train split (+ --extra-train), early-stop on val, evaluate on the held-out test split."""
    from rich.console import Console

    from ..classifiers import TrainConfig
    from ..classifiers.data_io import train_on_dataset
    from ..classifiers.evaluate import plot_curves

    from ..atomic import check_writable
    from .options import alias, note

    split = alias(split_manifest, split_old, "--split-manifest", "--split")
    img_size = alias(working_size, img_size_old, "--working-size", "--img-size")
    if plot_old:
        note("--plot is deprecated; use --plots")
    plots = plots or plot_old
    out = out or Path("runs") / "train" / f"{model}-seed{seed}"
    check_writable(out, "--out")  # before any image is read or any epoch trained
    console = Console()
    cfg = TrainConfig(model=model, mode=mode, epochs=epochs, batch_size=batch_size, img_size=img_size, lr=lr,
                      optimizer=optimizer, schedule=schedule, weight_decay=weight_decay, label_smoothing=label_smoothing,
                      class_weighted=class_weighted, early_stopping=None if early_stopping == "none" else early_stopping,
                      patience=patience, pretrained=_pretrained_value(no_pretrained, pretrained_optional),
                      weights=str(weights) if weights else None, augment=augment, color_jitter=color_jitter,
                      in_chans=in_chans, stage1_epochs=stage1_epochs, head=head, drop_rate=drop_rate,
                      device=device, amp=amp)
    if param:  # checked against TrainConfig: unknown keys and bad values fail here, before any image is read
        import dataclasses

        from ..config import check_table, parse_assignments

        cfg = dataclasses.replace(cfg, **check_table(TrainConfig, parse_assignments(param, "--param"), "--param"))
    cfg.validate()

    def progress(row: dict) -> None:
        console.print(epoch_line(row, epochs), highlight=False, soft_wrap=True)

    result = train_on_dataset(data, cfg, seed=seed, layout=layout, split=split, extra_train=extra_train,
                              progress=progress, skip_bad=skip_bad, datasheet=datasheet,
                              accept_folder_labels=accept_folder_labels)
    result.save(out)
    if plots:
        plot_curves(result.curves, str(out / "curves.png"), title=f"{model} seed {seed}")
    else:
        (out / "curves.png").unlink(missing_ok=True)  # a previous run's figure must not sit beside this model
    _print_metrics(console, result, out)


def epoch_line(row: dict, epochs: int | None = None) -> str:
    """One epoch in under 80 columns: ``epoch  3/10 head  loss 0.6931 acc 0.5000  val loss 0.6931 acc 0.5000  1.2s``
    (the first loss/acc pair is the training split's; ``head``/``all``: the part being trained)."""
    total = f"/{epochs}" if epochs else ""
    part = str(row.get("trainable", ""))[:5]
    val = f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}" if "val_loss" in row else ""
    t = float(row["time_s"])
    return (f"epoch {row['epoch']:>3d}{total} {part:<5} loss {row['train_loss']:.4f} acc "
            f"{row['train_accuracy']:.4f}{val}  {t:.0f}s" if t >= 100 else
            f"epoch {row['epoch']:>3d}{total} {part:<5} loss {row['train_loss']:.4f} acc "
            f"{row['train_accuracy']:.4f}{val}  {t:.1f}s")


def _print_metrics(console, result, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{result.info.name} ({result.info.timm_name}), seed {result.seed}: held-out test split")
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("val (best epoch)", justify="right")
    for key in ["accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"] + \
            [f"{m}_{c}" for c in result.classes for m in ("precision", "recall", "f1")]:
        t, v = result.metrics.get(key), result.val_metrics.get(key)
        table.add_row(key, "-" if t is None else f"{t:.4f}", "-" if v is None else f"{v:.4f}")
    console.print(table)
    maj = result.extra.get("majority_class_accuracy")
    w = result.info
    console.print(f"best epoch {result.best_epoch} of {len(result.curves)}; majority-class accuracy "
                  f"{maj:.4f}; weights: {'pretrained ' + w.pretrained_source if w.pretrained else 'random init'}; "
                  f"confusion (rows true {result.classes}): {result.confusion}", highlight=False)
    console.print(f"wrote {out}/record.json, model.safetensors, model_config.json", highlight=False)


def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    num_classes: int = typer.Option(2, "--num-classes", help="Head size used for the parameter counts."),
    generators: bool = typer.Option(False, "--generators", help="Every generator option with its default, range and help."),
    options: bool = typer.Option(False, "--options", help="Every option of every generator and spec table ([training], [data], ...)."),
) -> None:
    """Classifier aliases, their timm names, parameter counts and default input sizes (any timm name also works).

    With --generators or --options: every option of the plugins and spec tables, with its default.
    """
    from rich.console import Console
    from rich.table import Table

    from ..classifiers import list_models

    if generators or options:
        from .options_cmd import option_rows, option_sections, print_options

        sections = option_sections(generators=True, tables=options)
        if as_json:
            typer.echo(json.dumps({title: option_rows(cls) for title, cls in sections}, indent=2))
        else:
            print_options(Console(), sections)
        return

    rows = list_models(num_classes=num_classes)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich import box

    console = Console()
    narrow = console.width < 110  # 80-column terminals: names are never cut, descriptions go below the table
    table = Table(title=f"classifiers (parameters with a {num_classes}-class head; any timm model name is accepted too)",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    for col, just in (("alias", "left"), ("timm name", "left"), ("pretrained weights" if not narrow else "weights", "left"),
                      ("params", "right"), ("input", "right"), ("min", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    if not narrow:
        table.add_column("description", justify="left", overflow="fold")
    for r in rows:
        weights = r["pretrained_timm_name"] or "-"
        cells = [r["alias"], r["timm_name"], "= timm name" if narrow and weights == r["timm_name"] else weights,
                 f"{r['n_params'] / 1e6:.2f} M", str(r["input_size"]), str(r["min_size"])]
        table.add_row(*cells, *([] if narrow else [r["description"]]))
    console.print(table)
    if narrow:
        for r in rows:
            console.print(f"[bold]{r['alias']}[/]: {r['description']}", highlight=False, soft_wrap=True)
    console.print("Every option of every generator, the training recipe and the spec tables, with defaults: "
                  "`ooc-bench list --options`.", highlight=False, soft_wrap=True)


def export_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint folder written by `ooc-bench train --out DIR`."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file (its preprocessing JSON is written beside it)."),
    opset: int = typer.Option(18, "--opset"),
) -> None:
    """Export a trained classifier to ONNX: uint8 RGB (N, S, S, 3) in, logits and probabilities out."""
    from ..atomic import check_writable
    from ..classifiers.export import export_onnx, preprocess_json_path

    check_writable(onnx, "--onnx")
    path = export_onnx(checkpoint, onnx, opset=opset)
    typer.echo(f"wrote {path} and {preprocess_json_path(path)}")


def predict_cmd(
    model: Path = typer.Argument(..., help="Checkpoint folder or exported .onnx file."),
    images: list[Path] = typer.Argument(..., help="Image files to classify."),
    backend: str = typer.Option("auto", "--backend", help="auto | onnxruntime | torch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per image."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (listed on stderr) instead of stopping."),
) -> None:
    """Classify image files with a trained checkpoint or exported ONNX model."""
    from rich.console import Console
    from rich.table import Table

    from ..classifiers.export import predict_files

    if skip_bad:
        from ..data.decode import decode_image
        from ..errors import UserInputError
        from .options import note

        readable = []
        for p in images:
            try:
                decode_image(str(p))
                readable.append(p)
            except UserInputError as exc:
                note(f"skipped (--skip-bad): {exc}")
        if not readable:
            raise UserInputError("no readable images left (--skip-bad skipped them all)")
        images = readable
    classes, probs, used = predict_files(model, [str(p) for p in images], backend=backend)
    if as_json:
        for p, row in zip(images, probs):
            typer.echo(json.dumps({"image": str(p), "predicted": classes[int(row.argmax())],
                                   "probabilities": {c: float(v) for c, v in zip(classes, row)}}))
        return
    table = Table(title=f"predictions ({used})")
    table.add_column("image", overflow="fold", ratio=1)  # long paths wrap inside the cell, never cut
    table.add_column("predicted", no_wrap=True)
    for c in classes:
        table.add_column(f"p({c})", justify="right", no_wrap=True)
    for p, row in zip(images, probs):
        table.add_row(str(p), classes[int(row.argmax())], *[f"{v:.4f}" for v in row])
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train)
    app.command("list")(list_cmd)
    app.command("export")(export_cmd)
    app.command("predict")(predict_cmd)
