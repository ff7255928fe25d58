"""The artifact size limit: its error names the setting and how to raise it, and the
command line's --max-artifact-bytes sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from satchel import ContentTooLargeError, open_runtime
from satchel.storage import BlobLimits
from tests.test_cli_api import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a fresh data folder."""
    return Cli(tmp_path / "data", capsys)


async def test_the_python_error_names_the_setting(tmp_path: Path) -> None:
    """Content over max_size is refused with a message saying where the limit is set."""
    async with open_runtime(store="memory", limits=BlobLimits(max_size=1000)) as rt:
        sid = await rt.sessions.create()
        with pytest.raises(ContentTooLargeError) as caught:
            await rt.artifacts.store(sid, "big.bin", b"x" * 200_000, type="tool_result")
        message = str(caught.value)
        assert "BlobLimits(max_size=" in message and "--max-artifact-bytes" in message
        assert await rt.artifacts.list(sid) == []


def test_the_command_line_sets_and_names_the_limit(cli: Cli, tmp_path: Path) -> None:
    """``--max-artifact-bytes`` lowers or raises the limit of a local command, and the
    refusal tells how to raise it."""
    sid = cli.ok("sessions", "create").strip()
    content = tmp_path / "big.bin"
    content.write_bytes(b"y" * 5000)
    code, _, err = cli("artifacts", "put", sid, str(content), "--max-artifact-bytes", "1000")
    assert code == 1 and err.startswith("ValidationError: "), err
    assert "--max-artifact-bytes" in err and "BlobLimits(max_size=" in err
    assert "5000 bytes" in cli.ok(
        "artifacts", "put", sid, str(content), "--max-artifact-bytes", "10000"
    )


def test_a_negative_limit_is_refused(cli: Cli) -> None:
    """A negative limit is a ValidationError, and nothing is stored."""
    code, _, err = cli("sessions", "create", "--max-artifact-bytes", "-1")
    assert code == 1 and err.startswith("ValidationError: "), err
