"""The httpx quickstart runs from a checkout and stops everything it starts."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "quickstart.py"


def test_quickstart_runs_and_summarises() -> None:
    """The example prints a line per request and a summary, and exits 0 within its bound."""
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "summary:" in done.stdout
    assert "3 attempt(s)" in done.stdout  # the flaky backend, retried by its route
    assert "→ 500" in done.stdout and "→ 404" in done.stdout
