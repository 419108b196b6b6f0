"""Running ``celltosg`` as a user does: the installed entry point in a subprocess, or ``main()`` itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from celltosg.cli import main

QC = ["--min-genes", "1", "--min-cells", "1", "--max-mito-fraction", "1"]


def entry_point() -> str:
    """The ``celltosg`` console script installed next to this interpreter (else the one on PATH)."""
    local = Path(sys.executable).parent / "celltosg"
    found = str(local) if local.is_file() else shutil.which("celltosg")
    if found is None:
        pytest.skip("the celltosg entry point is not installed")
    return found


def popen(*args: str) -> subprocess.Popen:
    """Start ``celltosg ARGS...`` in its own process (PYTHONPATH is passed on, so a checkout's code runs)."""
    return subprocess.Popen([entry_point(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``celltosg ARGS...`` in a subprocess and return its exit code and output."""
    return subprocess.run([entry_point(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Call the entry point's ``main()`` in this process; returns (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["celltosg", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *phrases: str) -> None:
    """A user mistake: non-zero exit, no traceback, one ``error:`` line containing every phrase."""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code not in (0, None), err
    assert "Traceback" not in err and len(errors) == 1, err
    for phrase in phrases:
        assert phrase in errors[0], (phrase, errors[0])
