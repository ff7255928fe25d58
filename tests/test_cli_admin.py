"""CLI: sessions update, import --new-id, backup and restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satchel._cli import main
from tests.test_cli_api import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a fresh data folder."""
    return Cli(tmp_path / "data", capsys)


def test_sessions_update(cli: Cli) -> None:
    """`sessions update` replaces what it is given and answers the session as it now is."""
    sid = cli.ok("sessions", "create", "--name", "draft", "--tag", "a").strip()
    found = cli.json("sessions", "update", sid, "--name", "final", "--tag", "b", "--tag", "c",
                     "--metadata", '{"k": 1}', "--idle-timeout", "60")  # fmt: skip
    assert (found["name"], found["tags"], found["metadata"]) == ("final", ["b", "c"], {"k": 1})
    assert found["config"]["idle_timeout_s"] == 60
    cleared = cli.json("sessions", "update", sid, "--no-tags", "--no-idle-timeout")
    assert (cleared["name"], cleared["tags"], cleared["config"]["idle_timeout_s"]) == (
        "final",
        [],
        None,
    )
    code, _, err = cli("sessions", "update", sid)
    assert code == 1 and err.startswith("InvalidArgument: "), err


def test_import_with_a_new_id(cli: Cli, tmp_path: Path) -> None:
    """`import --new-id` stores a copy beside the session the archive came from."""
    sid = cli.ok("sessions", "create", "--name", "orig").strip()
    cli.ok("export", sid, "-o", str(tmp_path / "a.tar"))
    code, _, err = cli("import", str(tmp_path / "a.tar"))
    assert code == 1 and err.startswith("SessionExists: "), err
    copy = cli.json("import", str(tmp_path / "a.tar"), "--new-id")["session_id"]
    assert copy != sid
    assert {s["id"] for s in cli.json("sessions", "list")} == {sid, copy}


def test_backup_and_restore(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`backup PATH` writes a backup that `restore` makes a checked data folder of."""
    sid = cli.ok("sessions", "create", "--name", "kept").strip()
    report = cli.json("backup", str(tmp_path / "b"))
    assert report["path"] == str(tmp_path / "b")
    code, _, err = cli("backup", str(tmp_path / "b"))
    assert code == 1 and err.startswith("ValidationError: "), err
    restored = tmp_path / "restored"
    assert main(["restore", str(tmp_path / "b"), "--data", str(restored), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"data": str(restored), "clean": True}
    assert [s["id"] for s in Cli(restored, capsys).json("sessions", "list")] == [sid]
    assert main(["restore", str(tmp_path / "b"), "--data", str(restored)]) == 1
    assert capsys.readouterr().err.startswith("ValidationError: ")


def test_restore_of_something_else_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A folder that is no backup is refused, and nothing is made."""
    (tmp_path / "junk").mkdir()
    code, _, err = cli("restore", str(tmp_path / "junk"))
    assert code == 1 and err.startswith("ValidationError: "), err
    assert not (tmp_path / "data").exists()
