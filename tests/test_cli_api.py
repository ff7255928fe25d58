"""Every CLI verb, on a data folder of its own and through the server that holds a folder."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from satchel._cli import main
from satchel._cli_output import Output
from satchel._serve import SERVER_FILE, find_server


class Cli:
    """Runs `satchel` in this process on one data folder, returning exit code and output."""

    def __init__(self, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = folder
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "--data", str(self.folder)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> Any:
        """The --json answer of a command that must succeed."""
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def ok(self, *args: str) -> str:
        """The output of a command that must succeed."""
        code, out, err = self(*args)
        assert code == 0, err
        return out


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a fresh data folder."""
    return Cli(tmp_path / "data", capsys)


def test_session_verbs(cli: Cli) -> None:
    """create, show, list, the lifecycle verbs, fork and delete, in tables and in JSON."""
    parent = cli.ok("sessions", "create", "--name", "parent", "--tag", "a").strip()
    child = cli.ok("sessions", "create", "--name", "child", "--parent", parent).strip()
    shown = cli.json("sessions", "show", child)
    assert shown["parent_session_id"] == parent and shown["status"] == "active"
    table = cli.ok("sessions", "list")
    assert "parent" in table and "child" in table and "status" in table
    assert [s["id"] for s in cli.json("sessions", "list", "--tag", "a")] == [parent]
    assert cli.ok("sessions", "suspend", child).strip() == f"{child}: suspended"
    assert cli.ok("sessions", "resume", child).strip() == f"{child}: active"
    assert cli.json("sessions", "fail", child, "--reason", "broke")["failure_reason"] == "broke"
    assert cli.ok("sessions", "archive", child).strip() == f"{child}: archived"
    cli.ok("sessions", "complete", parent)
    forked = cli.ok("sessions", "fork", parent, "--name", "copy").strip()
    assert cli.json("sessions", "show", forked)["name"] == "copy"
    code, _, err = cli("sessions", "delete", parent)
    assert code == 1 and err.startswith("SessionHasChildren: ")
    cli.ok("sessions", "delete", parent, "--cascade")
    code, _, err = cli("sessions", "show", child)
    assert code == 1 and err.startswith("SessionNotFound: ")


def test_artifact_verbs(cli: Cli, tmp_path: Path) -> None:
    """put (bulk), list, get, versions, query, share, revoke and delete."""
    sid = cli.ok("sessions", "create").strip()
    other = cli.ok("sessions", "create").strip()
    files = []
    for name, content in (("a.txt", b"alpha"), ("b.bin", bytes(range(256)) * 500)):
        path = tmp_path / name
        path.write_bytes(content)
        files.append(path)
    stored = cli.json("artifacts", "put", sid, *map(str, files), "--tag", "t", "--type",
                      "tool_result", "--metadata", '{"source": "disk"}')  # fmt: skip
    assert [(r["name"], r["version"]) for r in stored] == [("a.txt", 1), ("b.bin", 1)]
    cli.ok("artifacts", "put", sid, str(files[0]), "--name", "a.txt")
    listed = cli.json("artifacts", "list", sid)
    assert [(a["name"], a["version"]) for a in listed] == [("a.txt", 2), ("b.bin", 1)]
    out = tmp_path / "back.bin"
    cli.ok("artifacts", "get", sid, "b.bin", "-o", str(out))
    assert out.read_bytes() == files[1].read_bytes()
    assert cli.ok("artifacts", "get", sid, "a.txt", "--version", "1") == "alpha"
    meta = cli.json("artifacts", "get", sid, "b.bin", "--metadata")
    assert meta["custom"] == {"source": "disk"} and meta["tags"] == ["t"]
    assert len(cli.json("artifacts", "versions", sid, "a.txt")) == 2
    found = cli.json("artifacts", "query", "--session", sid, "--min-size", "1000")
    assert [a["name"] for a in found] == ["b.bin"]
    assert "b.bin" in cli.ok("artifacts", "query", "--tag", "t")
    cli.ok("artifacts", "share", sid, "a.txt", other, "--permission", "read")
    cli.ok("artifacts", "revoke", sid, "a.txt", other)
    cli.ok("artifacts", "delete", sid, "a.txt", "--version", "1")
    assert [v["version"] for v in cli.json("artifacts", "versions", sid, "a.txt")] == [2]
    cli.ok("artifacts", "delete", sid, "a.txt")
    code, _, err = cli("artifacts", "get", sid, "a.txt")
    assert code == 1 and err.startswith("ArtifactNotFound: ")


def test_timeline_replay_check_gc_stats_actors_schedules(cli: Cli) -> None:
    """The journal, replay, upkeep and control verbs answer."""
    sid = cli.ok("sessions", "create").strip()
    lua = cli.folder.parent / "s.lua"
    lua.write_text("Session.setState(ARGS[1], 'k', 1) Session.setState(ARGS[1], 'k', 2)")
    assert main(["run", "--data", str(cli.folder), str(lua), "--", sid]) == 0
    entries = cli.json("timeline", sid, "--offset", "1")
    assert [e["kind"] for e in entries] == ["state_set", "state_set"]
    assert "events_replayed: 3" in cli.ok("replay", sid)
    modified = cli.json("replay", sid, "--mode", "modified", "--set", "k=10")
    assert modified["state"] == {"k": 10}
    assert cli.ok("check").strip().endswith("clean")
    assert cli.json("gc")["compacted"] is True
    assert cli.json("stats")["backend"] == "rocksdb"
    assert isinstance(cli.json("actors", "list"), list)
    code, _, err = cli("actors", "stop", sid)
    assert code == 1 and err.startswith("ActorNotFound: ")  # each local command starts afresh
    schedule = cli.ok("schedules", "add", sid, "--every", "3600", "--when", "4000000000")
    assert [s["id"] for s in cli.json("schedules", "list", sid)] == [schedule.strip()]
    assert cli.json("schedules", "cancel", schedule.strip()) == {"cancelled": True}


def test_export_import_round_trip(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export then import into another folder gives the same session, journal and content."""
    sid = cli.ok("sessions", "create", "--name", "travels").strip()
    blob = tmp_path / "x.bin"
    blob.write_bytes(bytes(range(256)) * 4000)
    cli.ok("artifacts", "put", sid, str(blob))
    archive = tmp_path / "s.satchel"
    cli.ok("export", sid, "-o", str(archive))
    assert archive.exists() and not archive.with_name("s.satchel.partial").exists()
    other = Cli(tmp_path / "other", capsys)
    assert other.json("import", str(archive))["session_id"] == sid
    for command in (("sessions", "show", sid), ("timeline", sid), ("artifacts", "list", sid)):
        assert other.json(*command) == cli.json(*command)
    back = tmp_path / "back.bin"
    other.ok("artifacts", "get", sid, "x.bin", "-o", str(back))
    assert back.read_bytes() == blob.read_bytes()
    code, _, err = other("import", str(archive))
    assert code == 1 and err.startswith("SessionExists: ")
    broken = tmp_path / "broken.satchel"
    broken.write_bytes(archive.read_bytes()[:3000])
    code, _, err = Cli(tmp_path / "third", capsys)("import", str(broken))
    assert code == 1 and err.startswith("ValidationError: ")


def test_no_progress_bar_when_piped(cli: Cli, tmp_path: Path) -> None:
    """Long commands print no progress bar when their output is not a terminal."""
    sid = cli.ok("sessions", "create").strip()
    code, out, err = cli("export", sid, "-o", str(tmp_path / "e.satchel"))
    assert code == 0 and err == "" and "\x1b" not in out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A `satchel serve` process holding a data folder; the folder."""
    folder = tmp_path / "served"
    process = subprocess.Popen(
        [sys.executable, "-m", "satchel._cli", "serve", "--data", str(folder), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while find_server(folder) is None:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield folder
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert not (folder / SERVER_FILE).exists()


def test_commands_go_to_the_server_holding_the_folder(
    served: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `satchel serve` holding the folder, commands and scripts run through it."""
    cli = Cli(served, capsys)
    sid = cli.ok("sessions", "create", "--name", "remote").strip()
    assert cli.json("sessions", "show", sid)["name"] == "remote"
    script = served.parent / "r.lua"
    script.write_text("Session.setState(ARGS[1], 'k', 1) print(Session.get(ARGS[1]).name)")
    assert main(["run", "--data", str(served), str(script), "--", sid]) == 0
    assert capsys.readouterr().out == "remote\n"
    # The session's actor lives in the server, where the actor verbs steer it.
    assert cli.json("actors", "show", sid)["actor"]["state"] == "running"
    assert cli.json("actors", "restart", sid) == {"requested": "restart"}
    assert cli.json("actors", "stop", sid) == {"stopped": True}
    assert cli.json("actors", "show", sid)["actor"] is None
    code, _, err = cli("actors", "passivate", sid)
    assert code == 1 and err.startswith("ActorNotFound: ")


def test_progress_is_shown_on_a_terminal_only() -> None:
    """Progress displays are on for a terminal, off when piped and off with --json."""
    shown = Output(as_json=False)
    shown.errors = Console(file=io.StringIO(), force_terminal=True)
    assert shown.progress().disable is False
    piped = Output(as_json=False)
    piped.errors = Console(file=io.StringIO(), force_terminal=False)
    assert piped.progress().disable is True
    as_json = Output(as_json=True)
    as_json.errors = Console(file=io.StringIO(), force_terminal=True)
    assert as_json.progress().disable is True


def test_durability_option(cli: Cli) -> None:
    """--durability picks the mode of the runtime a command opens; stats shows it."""
    sid = cli.ok("sessions", "create", "--durability", "machine").strip()
    assert cli.json("sessions", "show", sid)["id"] == sid
    assert cli.json("stats")["durability"] == "process"
    stats = cli.json("stats", "--durability", "machine")
    assert stats["durability"] == "machine" and stats["group_commit"]["durability"] == "machine"
    code, _, err = cli("stats", "--durability", "disk")
    assert code == 2 and "invalid choice" in err


def test_durability_must_match_the_server(served: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Asking a server for another durability than it runs is refused, not ignored."""
    cli = Cli(served, capsys)
    code, _, err = cli("stats", "--durability", "machine")
    assert code == 1 and "runs in process durability" in err
    assert cli.json("stats", "--durability", "process")["durability"] == "process"
