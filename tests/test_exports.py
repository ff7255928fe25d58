"""Every public name has exactly one public home."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

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


#: What each layer may import of satchel: the kernel nothing above it, storage the kernel,
#: the domain both, scripting (the Lua globals call the domain) all three; none of them the
#: facade (``satchel._*``), which sits above them all.
_MAY_IMPORT = {
    "runtime": {"runtime"},
    "storage": {"runtime", "storage"},
    "actors": {"runtime", "storage", "actors"},
    "scripting": {"runtime", "storage", "actors", "scripting"},
}
#: Modules that import the facade only to find where the package lies on disk.
_LOCATES_THE_PACKAGE = {"scripting/_pool.py"}


def _satchel_imports(source: Path, package: str) -> set[str]:
    """The satchel layers ``source`` (a module of ``package``, e.g. ``satchel.actors.hooks``)
    imports, by name: ``runtime``, ``storage``, ..., or ``facade`` for ``satchel._*``."""
    import ast

    layers: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from satchel import storage`` imports a layer, not the facade.
            names = [f"{module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "satchel":
                continue
            if parts[:2] == ["satchel", "_version"]:
                continue  # a constant with no imports: every layer may stamp it
            if len(parts) == 1 or parts[1].startswith("_"):
                layers.add("facade")
            else:
                layers.add(parts[1])
    return layers


def test_each_layer_imports_only_the_layers_beneath() -> None:
    """runtime imports no other layer, storage only runtime, actors (every subpackage) those
    two, scripting those three, and none of them the facade (``satchel._*``)."""
    found = []
    for layer, allowed in _MAY_IMPORT.items():
        root = Path(importlib.import_module(f"satchel.{layer}").__file__ or "").parent
        for source in root.rglob("*.py"):
            sub = source.parent.relative_to(root).parts
            package = ".".join(["satchel", layer, *sub])
            extra = _satchel_imports(source, package) - allowed
            if f"{layer}/{source.relative_to(root)}" in _LOCATES_THE_PACKAGE:
                extra.discard("facade")
            if extra:
                found.append(f"{layer}/{source.relative_to(root)}: {sorted(extra)}")
    assert found == []
