"""Tests of prompt templates: metadata fields, missing fields vanishing cleanly, per-class templates."""

from __future__ import annotations

import pytest

from ooc_bench.errors import UserInputError
from ooc_bench.generators.diffusion.prompts import DEFAULT_SD_TEMPLATE, THESIS_TEMPLATE, class_template, render_prompt


def test_missing_fields_vanish_cleanly():
    assert render_prompt(DEFAULT_SD_TEMPLATE, "good", {}) == "good cells"
    assert render_prompt(DEFAULT_SD_TEMPLATE, "good", {"day": "3"}) == "good cells, age: 3"
    md = {"cell_type": "HepG2", "day_bucket": "2-3_days", "day": "2"}
    assert render_prompt(DEFAULT_SD_TEMPLATE, "bad", md) == "bad cells, HepG2, age: 2-3 days"
    assert render_prompt(THESIS_TEMPLATE, "bad", md) == "bad cells age: 2-3 days"
    assert render_prompt(THESIS_TEMPLATE, "bad", {}) == "bad cells"
    assert render_prompt("{label}, {x}, [[tag]]", "good", {}) == "good, [tag]"


def test_per_class_templates_and_errors():
    prompt = {"good": "healthy {label} culture", "*": "{label} cells"}
    assert class_template(prompt, "good") == "healthy {label} culture"
    assert class_template(prompt, "bad") == "{label} cells"
    with pytest.raises(UserInputError, match="no entry for class"):
        class_template({"good": "x"}, "bad")
    with pytest.raises(UserInputError, match="malformed"):
        render_prompt("{label cells", "good", {})
