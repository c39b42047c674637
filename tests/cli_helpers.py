"""Run the ooc-bench CLI in-process the way the console script does, for tests."""

from __future__ import annotations

from ooc_bench.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``ooc-bench ARGS``; return (exit code, stdout, stderr) and check that no traceback was printed."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.out, out.err
