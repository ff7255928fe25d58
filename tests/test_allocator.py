"""tune_allocator: freed large buffers stay warm in the heap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import satchel
from satchel import ValidationError

# Decompresses a 1 MiB chunk 200 times, as artifact loads do, printing the page faults that
# took (python-lz4 decompresses into a buffer of its own, then copies it into the result).
_PROBE = """
import os, resource, sys
import lz4.frame
import satchel
if sys.argv[1] == "tuned":
    assert satchel.tune_allocator()
content = os.urandom(1 << 19) + bytes(1 << 19)
packed = lz4.frame.compress(content, block_size=lz4.frame.BLOCKSIZE_MAX4MB)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(200):
    content = lz4.frame.decompress(packed)
    del content
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_tuned_process_reuses_freed_megabyte_buffers() -> None:
    """After tune_allocator, 200 chunk decompressions reuse warm pages instead of faulting."""
    plain, tuned = _faults("plain"), _faults("tuned")
    assert plain > 200 * 256  # glibc gave the buffers back: fresh pages every round
    assert tuned < plain / 10


@pytest.mark.parametrize(
    ("option", "value"),
    [("mmap_threshold", 0), ("mmap_threshold", 64 << 20), ("trim_threshold", 0)],
)
def test_out_of_range_thresholds_are_refused(option: str, value: int) -> None:
    """Thresholds glibc would refuse raise ValidationError before anything changes."""
    with pytest.raises(ValidationError, match=option):
        satchel.tune_allocator(**{option: value})
