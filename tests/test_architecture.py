"""The layering holds: no import cycles in data/ and classifiers/, no test module in production, one settings module,
every imported package declared, and the package byte-compiles on Python 3.10 with a tomllib fallback."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "ooc_bench"
ROOT = PKG.parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every ooc_bench module ``module`` imports, at module level or inside functions (TYPE_CHECKING blocks left out)."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports are for annotations only
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    mods = _modules()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {f for f in found if f in mods and f != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("package", ["ooc_bench.data", "ooc_bench.classifiers"])
def test_no_import_cycles_inside(package):
    """Lazy (function-level) imports count too: a cycle there is a layering cycle that only hides at import time."""
    mods = {m: p for m, p in _modules().items() if m == package or m.startswith(package + ".")}
    graph = {m: {d for d in _imports(m, p) if d in mods and d != package} for m, p in mods.items() if m != package}
    assert _cycles(graph) == []


def test_the_data_layer_imports_no_model_code():
    bad = {m: sorted(d for d in _imports(m, p) if d.startswith(("ooc_bench.generators", "ooc_bench.classifiers",
                                                                  "ooc_bench.metrics", "ooc_bench.matrix")))
           for m, p in _modules().items() if m.startswith("ooc_bench.data")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_production_code_imports_no_test_module():
    offenders = {}
    for m, p in _modules().items():
        if m.startswith("ooc_bench.testing"):
            continue
        text = p.read_text(encoding="utf-8")
        deps = [d for d in _imports(m, p) if d.startswith("ooc_bench.testing")]
        if deps or re.search(r"^\s*(from|import) (unittest|pytest)\b", text, re.M):
            offenders[m] = deps or ["unittest/pytest"]
    assert offenders == {}


def test_every_ooc_bench_environment_variable_is_read_in_settings_only():
    from ooc_bench.settings import ENV_VARS

    readers = {}
    for m, p in _modules().items():
        text = p.read_text(encoding="utf-8")
        for name in set(re.findall(r"OOC_BENCH_[A-Z_]+", text)):
            assert name in ENV_VARS, f"{m} uses {name}, which ooc_bench/settings.py does not declare"
        if m != "ooc_bench.settings" and re.search(r"environ(\.get)?\s*[\[(]\s*[\"']OOC_BENCH_", text):
            readers[m] = "reads os.environ['OOC_BENCH_...'] itself"
    assert readers == {}


def test_no_private_names_imported_across_files():
    offenders = []
    for m, p in _modules().items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("ooc_bench")):
                offenders += [f"{m}: {a.name}" for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    assert offenders == []


def _third_party_imports() -> set[str]:
    names = set()
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "ooc_bench"}


def test_every_imported_package_is_declared():
    from ooc_bench.tomlcompat import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project.get("optional-dependencies", {}).values() for d in extra]
    declared_names = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].strip().lower().replace("_", "-") for d in declared}
    dist_of = md.packages_distributions()
    missing = {}
    for module in _third_party_imports():
        dists = dist_of.get(module) or ([module] if module == "tomli" else [])
        if not any(d.lower().replace("_", "-") in declared_names for d in dists):
            missing[module] = dists
    assert missing == {}


def test_every_tomllib_import_has_the_python_310_fallback():
    direct = []
    for p in PKG.rglob("*.py"):
        if p.name == "tomlcompat.py":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
                direct.append(str(p.relative_to(ROOT)))
    assert direct == []  # everything reads TOML through ooc_bench.tomlcompat (tomllib, or tomli before 3.11)
    text = (PKG / "tomlcompat.py").read_text()
    assert "sys.version_info >= (3, 11)" in text and "import tomli as tomllib" in text


def _python310() -> str | None:
    """A working Python 3.10 interpreter (pyenv's own binary before a shim that may not be activated), or None."""
    candidates = sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob("3.10*/bin/python3.10"))
    candidates += [c for c in (shutil.which("python3.10"),) if c]
    for c in candidates:
        try:
            out = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"], capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.stdout.strip() == "True":
            return c
    return None


PY310 = _python310()


@pytest.mark.skipif(PY310 is None, reason="no python3.10 on this machine")
def test_package_byte_compiles_and_configs_parse_on_python_310(tmp_path):
    """Python 3.10 (no third-party packages installed): every module compiles, and the config layer, which needs
    only the standard library, parses its typed options (``int | None`` annotations) and rejects bad values."""
    script = f"""
import py_compile, pathlib, sys
assert sys.version_info[:2] == (3, 10), sys.version
for p in sorted(pathlib.Path({str(PKG)!r}).rglob("*.py")):
    py_compile.compile(str(p), cfile={str(tmp_path)!r} + "/" + p.name + "c", doraise=True)
sys.path.insert(0, {str(ROOT)!r})
from dataclasses import dataclass
from ooc_bench.config import check_table, option
from ooc_bench.errors import UserInputError
from ooc_bench.settings import cache_dir, threads
@dataclass
class C:
    n: int | None = option(None, "n", low=1)
    xs: list[float] = option([0.5], "xs")
assert check_table(C, {{"n": "3", "xs": "0.1,0.2"}}) == {{"n": 3, "xs": [0.1, 0.2]}}
try:
    check_table(C, {{"n": 0}}, "f.toml", "[t]")
    raise SystemExit("no error")
except UserInputError as exc:
    assert "f.toml: [t] n = 0 is out of range" in str(exc), exc
print("ok", threads() >= 1, cache_dir().name)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([PY310, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok True")
