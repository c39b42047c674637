"""Prompt templates with metadata fields: "{label} cells, {cell_type}, day {day_bucket}"; missing fields vanish cleanly."""

from __future__ import annotations

import re
import string
from typing import Any

from ...errors import UserInputError

DEFAULT_SD_TEMPLATE = "{label} cells, {cell_type}, age: {day_bucket}"
# The bachelor-thesis prompt ("{good|bad} cells age: {day bucket}"); the brackets drop " age: " when no day is known.
THESIS_TEMPLATE = "{label} cells[ age: {day_bucket}]"

_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """Field names used in a template (``{label}``, ``{day_bucket}`` ...)."""
    try:
        return [f for _, f, _, _ in _FORMATTER.parse(template) if f]
    except ValueError as exc:
        raise UserInputError(f"prompt template {template!r} is malformed: {exc}") from exc


def prompt_fields(label: str, metadata: dict[str, Any] | None) -> dict[str, str]:
    """The values a template can use: ``label`` (and ``class``), every metadata key, and ``day_bucket`` from ``day``.

    Underscores in values become spaces ("2-3_days" -> "2-3 days").
    """
    fields = {str(k): "" if v is None else str(v).replace("_", " ").strip() for k, v in (metadata or {}).items()}
    fields.setdefault("day_bucket", fields.get("day", ""))
    fields["label"] = str(label)
    fields["class"] = str(label)
    return fields


def _fill(part: str, fields: dict[str, str]) -> tuple[str, bool, bool]:
    """Render ``part``; also say whether it used fields and whether any of them was empty."""
    out, used, empty = [], False, False
    for literal, name, spec, conv in _FORMATTER.parse(part):
        out.append(literal)
        if name:
            used = True
            value = fields.get(name, "")
            if value == "":
                empty = True
            out.append(format(value, spec or ""))
    return "".join(out), used, empty


def render_prompt(template: str, label: str, metadata: dict[str, Any] | None = None) -> str:
    """Fill ``template`` for one image; parts whose fields are missing disappear without leftover punctuation.

    Rules: a ``[...]`` group is dropped when any field inside it is empty; a comma-separated segment is
    dropped when it uses fields and all of them are empty; whitespace is collapsed and dangling
    separators are trimmed. So "{label} cells, {cell_type}, age: {day_bucket}" renders "good cells" when
    the image has no metadata, and "good cells, HepG2, age: 2-3 days" when it has.
    """
    template_fields(template)
    fields = prompt_fields(label, metadata)

    def group(m: re.Match) -> str:
        text, _, empty = _fill(m.group(1), fields)
        return "" if empty else text

    # Bracket groups first (no nesting); a literal bracket is written as [[ or ]].
    work = template.replace("[[", "\x00").replace("]]", "\x01")
    segments = []
    for seg in work.split(","):
        rendered_groups = re.sub(r"\[([^\[\]]*)\]", group, seg)
        text, used, _ = _fill(rendered_groups, fields) if "{" in rendered_groups else (rendered_groups, False, False)
        seg_fields = template_fields(seg.replace("[", "").replace("]", ""))
        if seg_fields and all(fields.get(f, "") == "" for f in seg_fields):
            continue
        segments.append(text)
    out = ", ".join(" ".join(s.split()) for s in segments if s.strip())
    out = out.replace("\x00", "[").replace("\x01", "]")
    out = re.sub(r"\s+([,:;])", r"\1", out)
    return out.strip(" ,;:")


def class_template(prompt: str | dict[str, str], label: str) -> str:
    """The template of class ``label``: ``prompt`` itself, or its entry for the class (key ``*`` as fallback)."""
    if isinstance(prompt, dict):
        if label in prompt:
            return prompt[label]
        if "*" in prompt:
            return prompt["*"]
        raise UserInputError(f"prompt templates have no entry for class {label!r} (and no '*' fallback); "
                             f"classes with templates: {', '.join(sorted(prompt))}")
    return str(prompt)
