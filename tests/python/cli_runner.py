"""Runs the litelens command for the Python tests (the binary is located by locations.py)."""
from __future__ import annotations

import os
import subprocess

import pytest

from locations import CLI


def run_cli(*args, ok: bool = True, timeout: float = 300, text: bool = False) -> subprocess.CompletedProcess:
    """Runs `litelens ARGS`; with ok=True a non-zero exit fails the test, showing stderr's end.
    Output is bytes unless text=True."""
    if not os.path.isfile(CLI):
        pytest.fail(f"litelens CLI not found at {CLI} (run `make build`, or set LITELENS_CLI)")
    argv = [CLI, *map(str, args)]
    p = subprocess.run(argv, capture_output=True, text=text, timeout=timeout)
    if ok and p.returncode != 0:
        err = p.stderr if text else p.stderr.decode(errors="replace")
        pytest.fail(f"`litelens {' '.join(argv[1:])}` exited {p.returncode}:\n{err[-3000:]}")
    return p
