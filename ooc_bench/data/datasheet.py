"""Read the OOC datasheet (xlsx sheet ``Main`` or a CSV export) and join it onto images by imageID (the file stem)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserInputError

if TYPE_CHECKING:
    from .layouts import Candidate

DECISION_LABELS = {"1": "good", "2": "bad", "good": "good", "bad": "bad"}
PATH_KEYS = ("cell_type", "day_bucket", "date", "image_id")


def column_key(name: str) -> str:
    """Datasheet header -> metadata key: 'imageID' -> image_id, 'cell type' -> cell_type, 'Decision 1/2 (good/bad)' -> decision."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())
    key = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if key.startswith("decision"):
        return "decision"
    return key or "column"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def read_datasheet(path: str | Path) -> list[dict[str, str]]:
    """Rows of the datasheet with normalised keys (see :func:`column_key`); xlsx uses sheet 'Main' (else the first)."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            import openpyxl

            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for bad files
            raise UserInputError(f"{path}: cannot read this workbook ({exc}); export the 'Main' sheet as CSV "
                                 "and pass it with --datasheet") from None
        ws = wb["Main"] if "Main" in wb.sheetnames else wb[wb.sheetnames[0]]
        rows_iter = ws.iter_rows(values_only=True)
        table = [[_cell(v) for v in row] for row in rows_iter]
        wb.close()
    elif path.suffix.lower() in (".csv", ".tsv"):
        import csv

        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                table = [[c.strip() for c in row] for row in
                         csv.reader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UserInputError(f"{path}: cannot read this datasheet CSV ({exc})") from None
    else:
        raise UserInputError(f"{path}: a datasheet must be .xlsx or .csv")
    table = [r for r in table if any(r)]
    if not table:
        raise UserInputError(f"{path}: the datasheet is empty")
    header = [column_key(h) for h in table[0]]
    if "image_id" not in header:
        raise UserInputError(f"{path}: the datasheet has no imageID column (found {', '.join(table[0])})")
    return [dict(zip(header, r + [""] * (len(header) - len(r)))) for r in table[1:]]


def find_datasheet(root: Path) -> Path | None:
    """``*datasheet*.xlsx`` (preferred) or ``*datasheet*.csv`` in ``root`` or its parent."""
    for folder in (root, root.parent):
        if not folder.is_dir():
            continue
        found = sorted(p for p in folder.iterdir() if p.is_file() and "datasheet" in p.name.lower()
                       and p.suffix.lower() in (".xlsx", ".csv") and not p.name.startswith((".", "~$")))
        found.sort(key=lambda p: p.suffix.lower() != ".xlsx")
        if found:
            return found[0]
    return None


def _norm_id(value: str) -> str:
    v = str(value).strip().replace("\\", "/").split("/")[-1].lower()
    return re.sub(r"\.(png|jpe?g|tiff?|bmp)$", "", v)


def _norm_text(value: str) -> str:
    return re.sub(r"[^0-9a-z]", "", re.sub(r"^cell[_ -]?type[_ -]?", "", str(value).strip().lower()))


def join_datasheet(cands: list["Candidate"], sheet: Path, warnings: list[str], accept_folder_labels: bool) -> None:
    """Add datasheet columns to each candidate's metadata; label conflicts raise unless ``accept_folder_labels``."""
    rows = read_datasheet(sheet)
    index: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        index[_norm_id(row["image_id"])].append(row)
    conflicts, ambiguous, unmatched = [], [], []
    used: set[int] = set()
    for c in cands:
        stem = Path(c.path).stem
        matches = index.get(_norm_id(stem), [])
        if len(matches) > 1 and "cell_type" in c.metadata:
            same = [r for r in matches if _norm_text(r.get("cell_type", "")) == _norm_text(c.metadata["cell_type"])]
            matches = same or matches
        if len(matches) > 1:
            ambiguous.append(c.path)
            continue
        if not matches:
            unmatched.append(c.path)
            continue
        row = matches[0]
        used.add(id(row))
        for k, v in row.items():
            if k == "image_id":
                continue
            key = f"sheet_{k}" if k in PATH_KEYS or k in ("width", "height", "mode") else k
            c.metadata[key] = v
        decision = DECISION_LABELS.get(row.get("decision", "").strip().lower())
        if decision is not None:
            c.metadata["sheet_label"] = decision
            if decision != c.label and c.label in ("good", "bad"):
                conflicts.append(f"{c.path} is '{c.label}' by its folder but '{decision}' "
                                 f"(decision {row.get('decision')}) in the datasheet")
    from .rules import listing as _listing

    if conflicts and not accept_folder_labels:
        raise UserInputError(f"{len(conflicts)} label conflict(s) between folders and datasheet {sheet}: "
                             f"{_listing(conflicts, 3)}. Fix the folder or the sheet, or pass "
                             "--accept-folder-labels to keep the folder labels")
    if conflicts:
        warnings.append(f"kept folder labels for {len(conflicts)} image(s) that the datasheet {sheet.name} labels "
                        f"differently: {_listing(conflicts, 3)}")
    if ambiguous:
        warnings.append(f"{len(ambiguous)} image(s) match several datasheet rows and got no datasheet columns: "
                        f"{_listing(ambiguous, 3)}")
    if unmatched:
        warnings.append(f"{len(unmatched)} image(s) have no row in the datasheet {sheet.name}: {_listing(unmatched, 3)}")
    unused = [r["image_id"] for r in rows if id(r) not in used]
    if unused:
        warnings.append(f"{len(unused)} datasheet row(s) match no image file: {_listing(unused, 3)}")
