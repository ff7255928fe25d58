"""Writes ``satchel/_sync_*.py``: the blocking facade of every public runtime class, each
method declared with the async method's own parameters and types (read from its source).

``python -m tests.sync_api_gen`` rewrites the files; ``tests/test_sync.py`` checks that the
committed files are what this writes from today's async API.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where each facade class is written (modules under ~600 lines): module -> facades.
FILES = {
    "_sync_api": ["SyncRuntime", "SyncCollectors", "SyncHooks", "SyncMetrics", "SyncControl",
                  "SyncReplays", "SyncActorRef"],
    "_sync_sessions": ["SyncSessionManager", "SyncSessionHandle"],
    "_sync_artifacts": ["SyncArtifactManager"],
}  # fmt: skip
HOME = {facade: module for module, facades in FILES.items() for facade in facades}

#: (module, class, facade name, extra instance attributes as (name, annotation)).
CLASSES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "satchel._runtime",
        "Runtime",
        "SyncRuntime",
        [
            ("sessions", "SessionManager"),
            ("artifacts", "ArtifactManager"),
            ("hooks", "Hooks"),
            ("collectors", "Collectors"),
            ("metrics", "Metrics"),
            ("replays", "Replays"),
            ("control", "Control"),
            ("store", "Store"),
            ("durability", "Durability"),
            ("backend", "str"),
        ],
    ),
    ("satchel.actors.sessions._manager", "SessionManager", "SyncSessionManager", []),
    ("satchel.actors.sessions._handle", "SessionHandle", "SyncSessionHandle", [("id", "str")]),
    ("satchel.actors.artifacts._artifact_manager", "ArtifactManager", "SyncArtifactManager", []),
    ("satchel.actors.artifacts._collect", "Collectors", "SyncCollectors", []),
    ("satchel.actors.hooks._hooks", "Hooks", "SyncHooks", []),
    ("satchel.actors.hooks._builtin_hooks", "Metrics", "SyncMetrics", []),
    ("satchel.actors._control", "Control", "SyncControl", []),
    ("satchel.actors.hooks._schedules", "Replays", "SyncReplays", []),
    (
        "satchel.runtime._supervisor",
        "ActorRef",
        "SyncActorRef",
        [("kind", "str"), ("actor_id", "str")],
    ),
]
WRAPPED = {cls: facade for _, cls, facade, _ in CLASSES}
#: Where each source folder installs.
PACKAGES = {"runtime": "satchel.runtime", "actors": "satchel.actors", "storage": "satchel.storage"}
ASYNC_CONTENT = "AsyncIterable[bytes]"
STREAM = "AsyncIterator[bytes]"


def _source_path(module: str) -> Path:
    parts = module.split(".")[1:]
    if parts[0] in PACKAGES:
        return ROOT.joinpath(*parts[:-1], parts[-1] + ".py")
    return ROOT / "satchel" / (parts[0] + ".py")


def _imports_of(module: str, tree: ast.Module) -> dict[str, str]:
    """Every name the module imports (also under TYPE_CHECKING) -> its import line."""
    package = module.rsplit(".", 1)[0]
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                found[alias.asname or alias.name] = f"from {base} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name] = f"import {alias.name}"
    return found


class _Names(ast.NodeVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)


def _annotation(node: ast.expr | None) -> str:
    return "Any" if node is None else ast.unparse(node)


def _sync_annotation(text: str) -> str:
    text = text.replace(ASYNC_CONTENT, "Iterable[bytes]").replace(STREAM, "Iterator[bytes]")
    return WRAPPED.get(text, text)


class _Writer:
    def __init__(self, home: str) -> None:
        self.home = home
        self.imports: set[str] = {
            "from collections.abc import Iterable, Iterator",
            "from typing import Any",
        }
        self.lines: list[str] = []

    def need(self, text: str, imports: dict[str, str], module: str) -> None:
        finder = _Names()
        finder.visit(ast.parse(text, mode="eval"))
        for name in finder.names:
            if name in HOME:
                if HOME[name] != self.home:
                    self.imports.add(f"from satchel.{HOME[name]} import {name}")
                continue
            if name in {"Any", "Iterable", "Iterator"}:
                continue
            if name in imports:
                self.imports.add(imports[name])
            elif name not in dir(__builtins__) and name not in vars(__import__("builtins")):
                self.imports.add(f"from {module} import {name}")

    def signature(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, imports: dict[str, str], module: str
    ) -> tuple[str, list[str], list[str]]:
        """The parameter list, the call's arguments, and the names of content arguments."""
        args = fn.args
        params: list[str] = ["self"]
        call: list[str] = []
        feeds: list[str] = []
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(positional[1:], defaults[1:], strict=True):
            params.append(self._param(arg, default, imports, module, feeds))
            call.append(_fed(arg.arg, feeds))
        if args.vararg is not None:
            params.append("*" + self._param(args.vararg, None, imports, module, feeds))
            call.append("*" + args.vararg.arg)
        elif args.kwonlyargs:
            params.append("*")
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            params.append(self._param(arg, kw_default, imports, module, feeds))
            call.append(f"{arg.arg}={_fed(arg.arg, feeds)}")
        if args.kwarg is not None:
            params.append("**" + self._param(args.kwarg, None, imports, module, feeds))
            call.append("**" + args.kwarg.arg)
        return ", ".join(params), call, feeds

    def _param(
        self,
        arg: ast.arg,
        default: ast.expr | None,
        imports: dict[str, str],
        module: str,
        feeds: list[str],
    ) -> str:
        text = _annotation(arg.annotation)
        if ASYNC_CONTENT in text:
            feeds.append(arg.arg)
        text = _sync_annotation(text)
        self.need(text, imports, module)
        if default is None:
            return f"{arg.arg}: {text}"
        value = ast.unparse(default)
        self.need(value, imports, module)
        return f"{arg.arg}: {text} = {value}"


def _fed(name: str, feeds: list[str]) -> str:
    """The argument ``name`` as the async method takes it (content iterables fed through)."""
    return f"self._portal.feed({name})" if name in feeds else name


def _doc(node: ast.AST) -> str:
    text = ast.get_docstring(node, clean=False) or ""  # type: ignore[arg-type]
    return text.replace('"""', "'''").replace("\\", "\\\\")


def _emit_method(
    out: _Writer, fn: ast.FunctionDef | ast.AsyncFunctionDef, imports: dict[str, str], module: str
) -> None:
    params, call, _ = out.signature(fn, imports, module)
    returns = _annotation(fn.returns)
    sync_returns = _sync_annotation(returns)
    out.need(sync_returns, imports, module)
    is_async = isinstance(fn, ast.AsyncFunctionDef)
    args = ", ".join(call)
    target = f"self._target.{fn.name}({args})"
    if returns == STREAM:
        body = f"return self._portal.iterate({target})"
    elif is_async:
        body = f"self._portal.run({target})"
        body = body if returns == "None" else "return " + body
    else:
        body = f"return {target}" if returns != "None" else target
    if returns in WRAPPED:
        inner = body.removeprefix("return ")
        body = f"return {WRAPPED[returns]}({inner}, self._portal)"
    out.lines.append(f"    def {fn.name}({params}) -> {sync_returns}:")
    doc = _doc(fn)
    if doc:
        out.lines.append(f'        """{doc}"""')
    out.lines.append(f"        {body}")
    out.lines.append("")


def _emit_attribute(
    out: _Writer, owner: str, name: str, annotation: str, imports: dict[str, str], module: str
) -> None:
    sync = _sync_annotation(annotation)
    out.need(sync, imports, module)
    value = f"self._target.{name}"
    if annotation in WRAPPED:
        value = f"{WRAPPED[annotation]}({value}, self._portal)"
    out.lines += ["    @property", f"    def {name}(self) -> {sync}:"]
    out.lines += [f'        """``{owner}.{name}``."""', f"        return {value}", ""]


def _emit_class(
    out: _Writer, module: str, cls_name: str, facade: str, extra: list[tuple[str, str]]
) -> None:
    tree = ast.parse(_source_path(module).read_text())
    imports = _imports_of(module, tree)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    out.imports.add(f"from {module} import {cls_name}")
    out.lines += [
        "",
        "@final",
        f"class {facade}:",
        f'    """The blocking face of ``{cls_name}`` (each call runs in the runtime\'s loop)."""',
        "",
        '    __slots__ = ("_portal", "_target")',
        "",
        f"    def __init__(self, target: {cls_name}, portal: Portal) -> None:",
        "        self._target = target",
        "        self._portal = portal",
        "",
        "    def __repr__(self) -> str:",
        f'        return f"<{facade} of {{self._target!r}}>"',
        "",
    ]
    for name, annotation in extra:
        _emit_attribute(out, cls_name, name, annotation, imports, module)
    _emit_members(out, cls, cls_name, imports, module)


def _emit_members(
    out: _Writer, cls: ast.ClassDef, cls_name: str, imports: dict[str, str], module: str
) -> None:
    """The public members of ``cls``, then those of its bases defined in satchel (a part of
    a class kept in a module of its own, as ``SessionManager``'s event-log calls are)."""
    for base in cls.bases:
        line = imports.get(ast.unparse(base), "")
        home = line.split()[1] if line.startswith("from ") else ""
        if home.startswith("satchel.") and home.rsplit(".", 1)[0] != "satchel.runtime":
            base_tree = ast.parse(_source_path(home).read_text())
            base_cls = next(
                n
                for n in base_tree.body
                if isinstance(n, ast.ClassDef) and n.name == ast.unparse(base)
            )
            _emit_members(out, base_cls, cls_name, _imports_of(home, base_tree), home)
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_"):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if "property" in decorators:
            _emit_attribute(out, cls_name, node.name, _annotation(node.returns), imports, module)
        elif "asynccontextmanager" in decorators:
            continue  # async context managers (event subscriptions) are for async hosts
        else:
            _emit_method(out, node, imports, module)


def generate() -> dict[str, str]:
    """The text of each ``satchel/_sync_*.py`` module, by module name."""
    texts = {}
    for home, facades in FILES.items():
        out = _Writer(home)
        for module, cls_name, facade, extra in CLASSES:
            if facade in facades:
                importlib.import_module(module)
                _emit_class(out, module, cls_name, facade, extra)
        out.imports.add("from typing import final")
        out.imports.add("from satchel._portal import Portal")
        body = "\n".join(out.lines).rstrip() + "\n"
        texts[home] = HEADER + "\n".join(sorted(out.imports)) + "\n\n" + body
    return texts


HEADER = textwrap.dedent(
    '''\
    """Part of the blocking facade of the runtime, one class per runtime class (``satchel.sync``).

    Written by ``python -m tests.sync_api_gen`` from the async classes' own signatures; do
    not edit by hand. Every call runs the async method in the runtime's event loop, in the
    calling thread, and returns its result; streams come back as iterators of bytes and
    content may be given as an iterable of bytes.
    """

    from __future__ import annotations

    '''
)


def path_of(module: str) -> Path:
    """The file of the generated module ``module``."""
    return ROOT / "satchel" / f"{module}.py"


def formatted(text: str) -> str:
    """``text`` with its imports sorted and formatted as the project's ruff settings say."""
    for command in (["check", "--select", "I,F401", "--fix"], ["format"]):
        text = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", "satchel/_sync_x.py", "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


if __name__ == "__main__":
    for name, text in generate().items():
        path_of(name).write_text(formatted(text))
