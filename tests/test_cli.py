"""The satchel command line: version, data folder, locks and event loops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import __version__
from satchel._cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `satchel` entry point as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "satchel._cli", *args], capture_output=True, text=True, check=False
    )


def test_version() -> None:
    """--version prints the package version."""
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"satchel {__version__}")


def test_data_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --data the folder comes from $SATCHEL_DATA."""
    monkeypatch.setenv("SATCHEL_DATA", str(tmp_path / "env"))
    assert main(["sessions", "create"]) == 0
    sid = capsys.readouterr().out.strip()
    assert main(["sessions", "show", sid, "--data", str(tmp_path / "env")]) == 0


def test_check_of_empty_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    """check on an empty store reports it clean and exits 0."""
    assert main(["--memory", "check"]) == 0
    out = capsys.readouterr().out
    assert "sessions: 0" in out and out.endswith("clean\n")


def test_locked_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A data folder held by another store gives a StoreLocked message naming the holder and
    exit status 1."""
    from satchel.storage import open_store

    with open_store(tmp_path):
        assert main(["--data", str(tmp_path), "check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("StoreLocked: ") and f"pid {os.getpid()}" in err


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_commands_run_on_either_event_loop(tmp_path: Path, backend: str) -> None:
    """--backend picks the loop: a session made, a script run and the store checked on it."""
    data = ["--data", str(tmp_path / "data"), "--backend", backend]
    made = run("sessions", "create", "--name", "loop", *data)
    assert made.returncode == 0, made.stderr
    script = tmp_path / "s.lua"
    script.write_text("print(Session.get(ARGS[1]).name)")
    ran = run(*data, "run", str(script), made.stdout.strip())
    assert (ran.returncode, ran.stdout.strip()) == (0, "loop"), ran.stderr
    checked = run("check", *data)
    assert checked.returncode == 0 and checked.stdout.endswith("clean\n")
