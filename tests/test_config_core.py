"""ooc_bench.config: one option declaration gives types, ranges, help, CLI parsing and clear errors; the CLI uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ooc_bench.config import build, check_table, defaults, markdown_table, option, options, parse_assignments, runtime_keys
from ooc_bench.errors import UserInputError
from tests.cli_helpers import run_cli


@dataclass
class Demo:
    steps: int = option(100, "training steps", low=1)
    lr: float | None = option(None, "learning rate (none: preset)", low=0.0, low_open=True)
    prompt: str | dict[str, str] = option("a {label}", "prompt or one per class")
    betas: tuple[float, float] = option((0.0, 0.99), "Adam betas")
    sampler: str = option("euler", "sampler", choices=("euler", "ddim"))
    flag: bool = option(True, "a switch")
    sizes: list[int] = option([8, 16], "sizes", low=1)
    device: str = option("auto", "device", runtime=True)

    def validate(self) -> None:
        if self.sampler == "ddim" and self.steps < 10:
            raise UserInputError("ddim needs steps >= 10")


def test_cli_strings_become_the_declared_types():
    got = check_table(Demo, {"steps": "5", "lr": "none", "prompt": {"a": "b"}, "betas": "0,0.9", "flag": "false",
                             "sizes": [32]})
    assert got == {"steps": 5, "lr": None, "prompt": {"a": "b"}, "betas": [0.0, 0.9], "flag": False, "sizes": [32]}
    assert check_table(Demo, {"steps": 7.0})["steps"] == 7 and isinstance(check_table(Demo, {"lr": 1})["lr"], float)


@pytest.mark.parametrize("table,message", [
    ({"steps": 0}, "f.toml: [g] steps = 0 is out of range; valid: >= 1"),
    ({"steps": 1.5}, "steps = 1.5 is not an integer"),
    ({"steps": True}, "steps = True is not an integer"),
    ({"lr": 0}, "lr = 0 is out of range; valid: > 0"),
    ({"sampler": "dpm"}, "sampler = 'dpm' is not a valid choice; valid: euler, ddim"),
    ({"flag": 3}, "flag = 3 is not true or false"),
    ({"prompt": 3}, "prompt = 3 is not str | dict[str, str]"),
    ({"stepz": 1}, "f.toml: unknown key(s) stepz in [g]; valid keys: steps, lr, prompt"),
    ({"sizes": [8, 0]}, "sizes = [8, 0] is out of range; valid: >= 1"),  # every element of a list
])
def test_errors_name_where_table_key_and_range(table, message):
    with pytest.raises(UserInputError) as e:
        check_table(Demo, table, "f.toml", "[g]")
    assert message in str(e.value)


def test_build_runs_cross_field_checks_and_describe_lists_every_option():
    assert build(Demo, {"steps": "20", "sampler": "ddim"}).steps == 20
    with pytest.raises(UserInputError, match="f.toml \\[g\\]: ddim needs steps >= 10"):
        build(Demo, {"sampler": "ddim", "steps": 2}, "f.toml", "[g]")
    assert [o.name for o in options(Demo)] == list(defaults(Demo))
    assert defaults(Demo)["sizes"] == [8, 16] and Demo().sizes is not Demo().sizes  # mutable defaults copied
    assert runtime_keys(Demo) == {"device"}
    md = markdown_table(Demo)
    assert "| `steps` | int | `100` | >= 1 | training steps |" in md and "`none`" in md


def test_parse_assignments_json_values():
    assert parse_assignments(["a=1", "b=0.5", "c=true", "d=[1, 2]", "e=text", "f=null"]) == \
        {"a": 1, "b": 0.5, "c": True, "d": [1, 2], "e": "text", "f": None}
    with pytest.raises(UserInputError, match="expected KEY=VALUE"):
        parse_assignments(["novalue"])


def test_list_options_shows_every_generator_and_table_with_defaults(capsys):
    code, out, err = run_cli(capsys, "list", "--options", "--json")
    assert code == 0, err
    sections = json.loads(out)
    by_title = {t.split("  ")[0]: {r["key"]: r for r in rows} for t, rows in sections.items()}
    gan = by_title['[generators.*] type = "gan"']
    assert gan["kimg"]["default"] == "none" and gan["capacity"]["valid"].startswith("auto")
    assert by_title['[generators.*] type = "sd-img2img"']["per_image"]["default"] == "0"
    assert by_title["[training] / [models.*]"]["epochs"]["default"] == "10"
    assert by_title["[data]"]["val"]["default"] == "0.15" and by_title["[quality]"]["features"]["default"] == "domain"
    assert all(r["help"] for rows in by_title.values() for r in rows.values())  # one-line help everywhere


def test_generate_param_is_checked_before_any_data_is_read(tmp_path, capsys):
    missing = tmp_path / "no-such-data"
    code, out, err = run_cli(capsys, "generate", "-g", "gan", "--data", str(missing), "--out", str(tmp_path / "o"),
                             "--param", "kimgs=1")
    assert code == 2 and "has no option 'kimgs'" in err and "kimg" in err
    code, out, err = run_cli(capsys, "generate", "-g", "gan", "--data", str(missing), "--out", str(tmp_path / "o"),
                             "--param", "kimg=-1")
    assert code == 2 and "kimg = -1 is out of range" in " ".join(err.split())


def test_train_param_is_checked(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--data", str(tmp_path / "nothing"), "--param", "stage2_lr_factor=0")
    assert code == 2 and "--param: stage2_lr_factor = 0 is out of range" in " ".join(err.split())
