"""CLI verbs: stdin and stdout, script arguments and results, JSON answers of mutations,
whole ids in tables, variables, audit, session config, schedules, and help."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from satchel._cli import main
from satchel._cli_commands import SESSION_COLUMNS
from satchel._cli_output import Output
from satchel._cli_parser import parser
from tests import test_cli_api
from tests.test_cli_api import Cli

EXAMPLES = Path(__file__).parent.parent / "examples" / "lua"
served = test_cli_api.served  # a `satchel serve` holding a folder (fixture)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a fresh data folder."""
    return Cli(tmp_path / "data", capsys)


def satchel(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run `satchel ARGS` in a child process with ``stdin``."""
    command = [sys.executable, "-m", "satchel._cli", *args]
    return subprocess.run(command, input=stdin, capture_output=True, check=False, timeout=120)


@settings(max_examples=5, deadline=None)
@given(content=st.binary(max_size=3000))
def test_dash_is_stdin_for_put_and_stdout_for_get(tmp_path_factory: Any, content: bytes) -> None:
    """`artifacts put ID -` stores stdin and `artifacts get ID NAME -o -` writes it back."""
    data = ["--data", str(tmp_path_factory.mktemp("d"))]
    sid = satchel("sessions", "create", *data).stdout.decode().strip()
    stored = satchel("artifacts", "put", sid, "-", "--name", "in.bin", "--json", *data,
                     stdin=content)  # fmt: skip
    assert json.loads(stored.stdout)[0]["size"] == len(content), stored.stderr
    back = satchel("artifacts", "get", sid, "in.bin", "-o", "-", *data)
    assert (back.returncode, back.stdout) == (0, content)


def test_stdin_needs_a_name(cli: Cli) -> None:
    """Content from stdin has no file name to take: --name is required."""
    sid = cli.ok("sessions", "create").strip()
    code, _, err = cli("artifacts", "put", sid, "-")
    assert code == 1 and err.startswith("InvalidArgument: ") and "--name" in err


def test_run_takes_options_after_the_script(cli: Cli, tmp_path: Path) -> None:
    """`run SCRIPT --data DIR -- a b`: options after the script, ARGS after --, and the
    script's return values printed (one a line), or under --json with its output."""
    script = tmp_path / "r.lua"
    script.write_text('print(ARGS[1] .. ARGS[2]) return 1, "two", {a = true}')
    data = ["--data", str(cli.folder)]
    assert main(["run", str(script), *data, "--", "a", "-b"]) == 0
    assert cli.capsys.readouterr().out == 'a-b\n1\ntwo\n{"a": true}\n'
    assert main(["run", str(script), *data, "--json", "--", "x", "y"]) == 0
    answer = json.loads(cli.capsys.readouterr().out)
    assert answer == {"results": [1, "two", {"a": True}], "output": ["xy"]}


def test_run_through_the_server_returns_results(
    served: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A script run through `satchel serve` prints its lines, then its return values."""
    script = tmp_path / "r.lua"
    script.write_text("print('line') return 42")
    assert main(["run", str(script), "--data", str(served)]) == 0
    assert capsys.readouterr().out == "line\n42\n"


def test_every_mutation_answers_json(cli: Cli, tmp_path: Path) -> None:
    """Under --json every command that changes something prints one JSON value."""
    sid = cli.json("sessions", "create")["id"]
    other = cli.json("sessions", "create")["id"]
    (tmp_path / "a.txt").write_text("a")
    assert cli.json("artifacts", "put", sid, str(tmp_path / "a.txt"))[0]["name"] == "a.txt"
    assert cli.json("artifacts", "share", sid, "a.txt", other)["target"] == other
    assert cli.json("artifacts", "revoke", sid, "a.txt", other)["revoked"] == other
    assert cli.json("state", "set", sid, "k", "[1, 2]") == {"key": "k", "value": [1, 2]}
    assert cli.json("state", "delete", sid, "k") == {"deleted": "k"}
    exported = cli.json("export", sid, "-o", str(tmp_path / "s.satchel"))
    assert exported["size"] == (tmp_path / "s.satchel").stat().st_size
    assert cli.json("artifacts", "delete", sid, "a.txt")["deleted"] == "a.txt"
    assert cli.json("sessions", "fork", sid)["id"]
    assert cli.json("sessions", "suspend", sid)["status"] == "suspended"
    assert cli.json("sessions", "delete", other) == {"deleted": other, "cascade": False}


def test_tables_show_whole_ids() -> None:
    """On a 100-column terminal a session table shows every id whole."""
    out = Output(as_json=False)
    out.console = Console(file=io.StringIO(), width=100, force_terminal=True, markup=False)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    row = {"name": "a long name " * 4, "status": "active", "tags": ["x", "y"],
           "artifact_count": 3, "created_at": "2026-01-01T00:00:00.000000Z"}  # fmt: skip
    rows = [{"id": i, **row} for i in ids]
    out.table(rows, SESSION_COLUMNS)
    printed = out.console.file.getvalue()
    assert all(i in printed for i in ids), printed


def test_piped_tables_are_not_folded(cli: Cli) -> None:
    """Piped, a table is as wide as its cells: names and times are not folded either."""
    name = "a name much longer than an eighty-column terminal would show in one cell"
    cli.ok("sessions", "create", "--name", name)
    assert name in cli.ok("sessions", "list")


def test_session_variables(cli: Cli) -> None:
    """state set, get, list and delete a session's variables, values as JSON."""
    sid = cli.ok("sessions", "create").strip()
    cli.ok("state", "set", sid, "plan", '{"done": 1}')
    cli.ok("state", "set", sid, "note", '"text"')
    assert cli.ok("state", "get", sid, "plan") == '{"done": 1}\n'
    assert cli.json("state", "list", sid) == {"plan": {"done": 1}, "note": "text"}
    assert "plan" in cli.ok("state", "list", sid)
    cli.ok("state", "delete", sid, "plan")
    assert cli.json("state", "list", sid) == {"note": "text"}


def test_audit_log(cli: Cli, tmp_path: Path) -> None:
    """artifacts audit lists the access decisions on a shared name."""
    sid = cli.ok("sessions", "create").strip()
    other = cli.ok("sessions", "create").strip()
    (tmp_path / "a.txt").write_text("a")
    cli.ok("artifacts", "put", sid, str(tmp_path / "a.txt"))
    cli.ok("artifacts", "share", sid, "a.txt", other)
    entries = cli.json("artifacts", "audit", sid, "a.txt")
    assert [(e["action"], e["target_session_id"]) for e in entries] == [("share", other)]
    assert "share" in cli.ok("artifacts", "audit", sid, "a.txt")


def test_create_with_config(cli: Cli, tmp_path: Path) -> None:
    """sessions create --config sets quotas, which are enforced."""
    sid = cli.ok("sessions", "create", "--config", '{"max_artifacts": 1}').strip()
    assert cli.json("sessions", "show", sid)["config"]["max_artifacts"] == 1
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    cli.ok("artifacts", "put", sid, str(tmp_path / "a"))
    code, _, err = cli("artifacts", "put", sid, str(tmp_path / "b"))
    assert code == 1 and err.startswith("QuotaExceeded: ")


def test_due_schedule_is_quiet_and_listed_in_rfc3339(cli: Cli) -> None:
    """A schedule already due leaves later local commands' stderr empty; list shows its
    time in RFC 3339 and says such replays run under `satchel serve`."""
    sid = cli.ok("sessions", "create").strip()
    schedule = cli.ok("schedules", "add", sid, "--every", "3600", "--when", "1").strip()
    code, _, err = cli("sessions", "list")
    assert (code, err) == (0, "")
    listed = cli.ok("schedules", "list")
    assert schedule in listed and "satchel serve" in listed
    due = cli.json("schedules", "list")[0]["due_at"]
    assert datetime.fromisoformat(due).tzinfo is not None


def test_schedule_results(served: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """schedules results lists what the runs of a schedule found, under `satchel serve`."""
    cli = Cli(served, capsys)
    sid = cli.ok("sessions", "create").strip()
    schedule = cli.ok("schedules", "add", sid, "--every", "3600", "--when", "1").strip()
    deadline = time.monotonic() + 30
    while not (runs := cli.json("schedules", "results", schedule)):
        assert time.monotonic() < deadline, "the due replay did not run"
        time.sleep(0.1)
    assert runs[0]["error"] is None and runs[0]["events_replayed"] >= 1
    assert "events_replayed" in cli.ok("schedules", "results", schedule)


def _actions(top: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """Every argument of every command, with the command's name."""
    found = []
    pending = [top]
    while pending:
        current = pending.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
            elif not isinstance(action, argparse._HelpAction):
                found.append((current.prog, action))
    return found


def test_every_argument_has_help() -> None:
    """Every flag and argument of every command has help text, and no text has reST."""
    top = parser({"log_level", "max_json_bytes"})
    missing = [f"{prog} {action.dest}" for prog, action in _actions(top) if not action.help]
    assert missing == []
    assert "``" not in top.format_help()
    assert all("``" not in (a.help or "") for _, a in _actions(top))


def test_tour_reads_as_intended(cli: Cli) -> None:
    """The tour's deliberate refusal is printed as expected, not as a failure."""
    out = cli.ok("run", str(EXAMPLES / "tour.lua"))
    assert "refused, as expected: InvalidStateTransition" in out and "false" not in out


def test_serve_passes_its_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """serve --log-level, --max-json-bytes and --token-file reach `satchel._serve.serve` as
    keywords (the token as the file holds it, without its newline)."""
    seen: dict[str, Any] = {}

    async def fake(rt: Any, host: str, port: int, *, log_level: str = "info",
                   max_json_bytes: int = 0, token: str | None = None,
                   task_status: Any = None) -> None:  # fmt: skip
        seen.update(log_level=log_level, max_json_bytes=max_json_bytes, token=token)
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("satchel._cli.serve", fake)
    (tmp_path / "token").write_text("a-token-of-sixteen-or-more\n")
    flags = ["--log-level", "debug", "--max-json-bytes", "1000", "--memory", "--port", "1",
             "--token-file", str(tmp_path / "token")]  # fmt: skip
    assert main(["serve", *flags]) == 1
    assert seen == {
        "log_level": "debug",
        "max_json_bytes": 1000,
        "token": "a-token-of-sixteen-or-more",
    }


def test_serve_refuses_a_short_token_file_naming_it(tmp_path: Path) -> None:
    """serve --token-file with an empty file is refused, the message naming the file."""
    (tmp_path / "token").write_text("\n")
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        code = main(["serve", "--memory", "--port", "1", "--token-file", str(tmp_path / "token")])
    assert code != 0
    assert "token" in out.getvalue() and str(tmp_path / "token") in out.getvalue()


def test_serve_refuses_cluster_flags_without_cluster(tmp_path: Path) -> None:
    """--lease-ttl (like --node-id) without --cluster is refused, not silently ignored."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        code = main(["serve", "--memory", "--port", "1", "--lease-ttl", "5"])
    assert code != 0
    assert "--lease-ttl goes with --cluster" in out.getvalue()
