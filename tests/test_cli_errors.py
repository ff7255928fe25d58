"""How CLI commands fail: one line `Kind: message`, exit 1 (2 for usage), never a traceback;
text printed as text; JSON errors under --json; no store made by a command that reads."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import _cli_commands
from satchel._cli import main
from satchel._cli_output import Output
from tests.test_cli_api import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a fresh data folder."""
    return Cli(tmp_path / "data", capsys)


def one_line(code: int, err: str, kind: str, status: int = 1) -> None:
    """Assert a failure: ``status``, and one stderr line starting ``kind: ``."""
    assert code == status, err
    assert err.startswith(f"{kind}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def session(cli: Cli) -> str:
    """A new session's id."""
    return cli.ok("sessions", "create").strip()


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_put_of_a_missing_file_or_a_folder(cli: Cli, tmp_path: Path, what: str) -> None:
    """artifacts put of a file that is not there, or of a folder, fails in one line."""
    sid = session(cli)
    path = tmp_path / "nothing" if what == "missing" else tmp_path
    code, _, err = cli("artifacts", "put", sid, str(path))
    one_line(code, err, "InvalidArgument")
    assert str(path) in err
    assert cli.json("artifacts", "list", sid) == []


def test_import_of_a_missing_archive(cli: Cli, tmp_path: Path) -> None:
    """import of an archive that is not there fails in one line."""
    session(cli)
    code, _, err = cli("import", str(tmp_path / "none.satchel"))
    one_line(code, err, "InvalidArgument")


def test_get_into_a_missing_folder(cli: Cli, tmp_path: Path) -> None:
    """artifacts get -o into a folder that does not exist fails in one line."""
    sid = session(cli)
    (tmp_path / "a.txt").write_text("a")
    cli.ok("artifacts", "put", sid, str(tmp_path / "a.txt"))
    code, _, err = cli("artifacts", "get", sid, "a.txt", "-o", str(tmp_path / "no" / "x"))
    one_line(code, err, "InvalidArgument")


def test_corrupt_chunk_on_get(cli: Cli, tmp_path: Path) -> None:
    """A corrupt chunk read by artifacts get is one IntegrityError line; no file is left."""
    sid = session(cli)
    source = tmp_path / "big.bin"
    source.write_bytes(random.Random(1).randbytes(300_000))  # kept as chunk files
    cli.ok("artifacts", "put", sid, str(source))
    chunk = sorted((cli.folder / "chunks").rglob("*"))[-1]
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    chunk.write_bytes(bytes(damaged))
    target = tmp_path / "back.bin"
    code, _, err = cli("artifacts", "get", sid, "big.bin", "-o", str(target))
    one_line(code, err, "IntegrityError")
    assert list(tmp_path.glob("back.bin*")) == []


def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    """serve on a port another socket holds fails in one line, exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "satchel._cli", "serve", "--port", port]
        done = subprocess.run(
            [*command, "--data", str(tmp_path / "d")], capture_output=True, text=True, timeout=120
        )
    one_line(done.returncode, done.stderr, "InvalidArgument")
    assert port in done.stderr


def test_unexpected_error_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error nobody planned for is one InternalError line, not a traceback."""

    async def broken(*args: object) -> int:
        raise ZeroDivisionError("oops")

    session(cli)
    monkeypatch.setattr(_cli_commands, "stats", broken)
    monkeypatch.setattr("satchel._cli_parser.cmd.stats", broken)
    code, _, err = cli("stats")
    one_line(code, err, "InternalError")
    assert "ZeroDivisionError: oops" in err


def test_script_error_is_text_and_printed_once(cli: Cli, tmp_path: Path) -> None:
    """A Lua error's `e.lua:100:`, `:smile:` and `[bold]` print as written, once."""
    script = tmp_path / "e.lua"
    script.write_text('error("e.lua:100: :smile: [bold]x[/bold]")')
    code, _, err = cli("run", str(script))
    assert code == 1
    first, *rest = err.splitlines()
    assert first == "ScriptError: e.lua:1: e.lua:100: :smile: [bold]x[/bold]"
    assert "e.lua:100:" not in "\n".join(rest)


_MARKUP = st.text(alphabet=st.sampled_from("ab:[]/100smile\\"), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(text=_MARKUP)
def test_printed_values_are_text(text: str) -> None:
    """Messages, fields, table cells and errors print exactly the text given."""
    real = Output(as_json=False)
    real.console.file = io.StringIO()
    real.errors.file = io.StringIO()
    real.message(text)
    real.fields({"name": text})
    real.table([{"id": "x", "name": text}], ("id", "name"))
    real.failure("Kind", text)
    assert real.console.file.getvalue().count(text) >= 3
    assert real.errors.file.getvalue() == f"Kind: {text}\n"


def test_errors_under_json(cli: Cli) -> None:
    """Under --json an error is a JSON object on stdout, nothing on stderr, same status."""
    session(cli)
    code, out, err = cli("sessions", "show", "0" * 8, "--json")
    assert (code, err) == (1, "")
    assert json.loads(out)["error"]["kind"] == "SessionNotFound"  # any text is a key
    code, out, err = cli("sessions", "nonsense", "--json")
    assert (code, err) == (2, "")
    assert json.loads(out)["error"]["kind"] == "InvalidArgument"


def test_usage_errors_exit_2(cli: Cli) -> None:
    """A command line argparse refuses exits 2 with its usage and one `Kind: message` line."""
    code, _, err = cli("sessions", "list", "--limit", "many")
    assert code == 2 and err.splitlines()[-1].startswith("InvalidArgument: ")


@pytest.mark.parametrize(
    "command",
    [("sessions", "list"), ("stats",), ("check",), ("artifacts", "query"), ("timeline", "x")],
)
def test_reading_a_missing_folder_makes_no_store(cli: Cli, command: tuple[str, ...]) -> None:
    """A command that only reads fails on a data folder that is not there, and makes none."""
    code, _, err = cli(*command)
    one_line(code, err, "InvalidArgument")
    assert "no data folder" in err and not cli.folder.exists()


def test_creating_makes_the_folder(cli: Cli) -> None:
    """sessions create makes the data folder, after which reading commands work."""
    sid = session(cli)
    assert cli.folder.is_dir() and [s["id"] for s in cli.json("sessions", "list")] == [sid]


def test_memory_needs_no_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """--memory reads an empty store without any folder."""
    assert main(["sessions", "list", "--memory", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_closed_stdout_ends_quietly(cli: Cli, tmp_path: Path) -> None:
    """`artifacts get ... | head -c 10`: the command stops, exit 1, with nothing on stderr."""
    sid = session(cli)
    (tmp_path / "big.bin").write_bytes(random.Random(2).randbytes(4 << 20))
    cli.ok("artifacts", "put", sid, str(tmp_path / "big.bin"))
    command = [sys.executable, "-m", "satchel._cli", "artifacts", "get", sid, "big.bin"]
    reader = subprocess.Popen(
        [*command, "--data", str(cli.folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert len(reader.stdout.read(10)) == 10
    reader.stdout.close()
    with reader.stderr:
        err = reader.stderr.read()
    assert (reader.wait(timeout=60), err) == (1, b"")


def test_a_server_that_does_not_answer_is_unreachable(cli: Cli) -> None:
    """A data folder whose server (a live process) listens nowhere fails in one line,
    ServerUnreachable, rather than as an internal error."""
    from satchel._serve import SERVER_FILE, TOKEN_FILE, process_started

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    cli.folder.mkdir(parents=True)
    (cli.folder / TOKEN_FILE).write_text("t" * 64)
    pid = os.getpid()
    found = {"url": f"http://127.0.0.1:{port}", "pid": pid, "started": process_started(pid)}
    (cli.folder / SERVER_FILE).write_text(json.dumps(found))
    code, _, err = cli("sessions", "list")
    one_line(code, err, "ServerUnreachable")
