"""The built wheel installs everything under `satchel` and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file names inside a wheel freshly built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("satchel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_only_satchel_at_top_level(wheel_names: list[str]) -> None:
    """No runtime/, storage/ or other folder lands at the top of site-packages."""
    tops = {name.split("/")[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"satchel"}


#: The domain's per-concept subpackages: every folder of actors/ with an __init__.py.
ACTOR_SUBPACKAGES = sorted(init.parent.name for init in (ROOT / "actors").glob("*/__init__.py"))


@pytest.mark.slow
def test_subpackages_and_marker_are_shipped(wheel_names: list[str]) -> None:
    """Every domain folder installs as a satchel subpackage, with py.typed."""
    expected = {
        "satchel/py.typed",
        "satchel/runtime/__init__.py",
        "satchel/actors/__init__.py",
        *(f"satchel/actors/{concept}/__init__.py" for concept in ACTOR_SUBPACKAGES),
        "satchel/actors/sessions/_session.py",
        "satchel/storage/__init__.py",
        "satchel/storage/_blobs.py",
        "satchel/scripting/__init__.py",
    }
    assert expected <= set(wheel_names)
    assert not [n for n in wheel_names if n.startswith("satchel/tests") or "/perf/" in n]


@pytest.mark.slow
def test_the_license_is_shipped(wheel_names: list[str]) -> None:
    """The MIT license text the project declares is in the wheel's metadata."""
    assert any(
        n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
        for n in wheel_names
    ), [n for n in wheel_names if ".dist-info/" in n]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_checkout_imports_at_its_root() -> None:
    """At the checkout's root (after ``pip install -e .``) ``satchel`` and every subpackage
    import, from the checkout's own folders."""
    script = (
        "import satchel, satchel.runtime, satchel.actors, satchel.storage, satchel.scripting;"
        "print(satchel.actors.__file__)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True
    )
    # Through the symlink satchel/actors -> ../actors: the checkout's own folder.
    assert Path(found.stdout.strip()).resolve() == (ROOT / "actors" / "__init__.py").resolve()


_WEB = "{'hypercorn', 'starlette', 'uvicorn', 'httpx', 'wsproto', 'h2', 'jinja2'}"


@pytest.mark.parametrize(
    "start",
    [
        "import satchel",
        # The CLI's parser and error report, as `satchel --help` runs them.
        "import satchel._cli as cli\n"
        "sys.argv, sys.stdout = ['satchel', '--help'], open(os.devnull, 'w')\n"
        "try:\n    cli.main()\nexcept SystemExit as done:\n    assert done.code == 0, done",
    ],
    ids=["import", "cli-help"],
)
def test_importing_satchel_imports_no_web_framework(start: str) -> None:
    """``import satchel`` and ``satchel --help`` leave the HTTP stack (hypercorn, starlette,
    uvicorn, httpx, jinja2) unimported until something serves or calls over HTTP, so an
    embedding host or a quick command does not pay for it."""
    script = (
        f"import os, sys\n{start}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {_WEB})), "
        "file=sys.stderr)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert found.stderr.split() == []
