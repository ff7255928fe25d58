"""Every public name has exactly one public home."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

import satchel

PUBLIC_MODULES = [
    "satchel",
    "satchel.sync",
    "satchel.runtime",
    "satchel.actors",
    "satchel.storage",
    "satchel.scripting",
    "satchel.integrations",
]


def public_names(module_name: str) -> dict[str, object]:
    """The public names a module defines or re-exports from a private module of satchel."""
    module = importlib.import_module(module_name)
    found = {}
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, type(satchel)):
            continue
        home = getattr(value, "__module__", module_name) or module_name
        if home.startswith("satchel"):
            found[name] = value
    return found


def test_each_public_object_has_one_home() -> None:
    """No class or function is public in two satchel modules."""
    homes: defaultdict[int, list[str]] = defaultdict(list)
    for module_name in PUBLIC_MODULES:
        for name, value in public_names(module_name).items():
            if callable(value):
                homes[id(value)].append(f"{module_name}.{name}")
    assert [h for h in homes.values() if len(h) > 1] == []


def test_public_modules_list_is_complete() -> None:
    """Every non-private subpackage of satchel is in the list this test checks."""
    found = {
        f"satchel.{info.name}"
        for info in pkgutil.iter_modules(satchel.__path__)
        if not info.name.startswith("_")
    }
    assert found <= set(PUBLIC_MODULES)


def test_public_names_are_defined_in_private_modules() -> None:
    """Public classes and functions live in private modules and are re-exported."""
    for module_name in PUBLIC_MODULES:
        for name, value in public_names(module_name).items():
            if callable(value):
                assert value.__module__.split(".")[-1].startswith("_"), f"{module_name}.{name}"


def test_runtime_imports_no_domain_package() -> None:
    """The kernel imports nothing from satchel.actors, satchel.storage or satchel.scripting."""
    import ast
    from pathlib import Path

    runtime = Path(importlib.import_module("satchel.runtime").__file__ or "").parent
    found = []
    for source in runtime.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            found += [
                f"{source.name}: {n}"
                for n in names
                if n.split(".")[-1] in {"actors", "storage", "scripting"}
                or n.startswith(("satchel.actors", "satchel.storage", "satchel.scripting", ".."))
            ]
    assert found == []
