"""The local CLI streams large answers: its memory stays bounded whatever their size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from satchel._cli import main

_MB = 1 << 20
#: Peak RSS a local `export` may reach, whatever the session's size.
_BOUND_MB = 100


def _peak_rss_mb(*args: str) -> int:
    """Run `satchel ARGS` in a fresh child process; its peak resident memory in MiB."""
    probe = (
        "import resource, subprocess, sys\n"
        "command = [sys.executable, '-m', 'satchel._cli', *sys.argv[1:]]\n"
        "done = subprocess.run(command, stdout=subprocess.DEVNULL)\n"
        "assert done.returncode == 0\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


@pytest.mark.slow
def test_local_export_memory_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A local export of a 240 MB session peaks under 100 MB of memory and is complete."""
    data = ["--data", str(tmp_path / "data")]
    assert main(["sessions", "create", *data]) == 0
    sid = capsys.readouterr().out.strip()
    content = tmp_path / "part.bin"
    for name in ("a", "b", "c", "d"):
        content.write_bytes(os.urandom(60 * _MB))  # incompressible: the archive is as large
        assert main(["artifacts", "put", sid, str(content), "--name", name, *data]) == 0
    archive = tmp_path / "s.satchel"
    peak = _peak_rss_mb("export", sid, "-o", str(archive), *data)
    assert archive.stat().st_size > 240 * _MB
    assert peak < _BOUND_MB, f"peak RSS {peak} MiB"
