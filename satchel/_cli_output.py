"""What CLI commands print: JSON with ``--json``, otherwise rich tables, and progress bars
for long work on a terminal only."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

_UNBOUNDED = 1 << 16


class Output:
    """Where a command's results go."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        # Everything printed is text: a Lua error's ``e.lua:100:`` is no emoji code, and
        # ``[bold]`` in a name is no markup.
        self.console = Console(soft_wrap=True, markup=False, emoji=False, highlight=False)
        self.errors = Console(
            stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False
        )
        if not self.console.is_terminal:
            # Piped, a table is as wide as its cells: nothing is folded for a reader that
            # is no screen.
            self.console.width = _UNBOUNDED

    def data(self, value: Any, columns: tuple[str, ...] = ()) -> None:
        """A result: JSON as is, a list as a table of ``columns``, a mapping as fields."""
        if self.as_json:
            sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
            return
        if isinstance(value, list):
            self.table(value, columns)
        elif isinstance(value, dict):
            self.fields(value)
        elif value is not None:
            self.console.print(value, markup=False, highlight=False)

    def table(self, rows: list[Any], columns: tuple[str, ...]) -> None:
        """Rows (mappings) as a table; ``(none)`` when there is none."""
        if not rows:
            self.console.print("(none)", style="dim")
            return
        names = columns or tuple(rows[0])
        cells = [[_cell(row.get(name)) for name in names] for row in rows]
        table = Table(
            *(_column(name, [line[i] for line in cells]) for i, name in enumerate(names)),
            header_style="bold",
            show_edge=False,
            pad_edge=False,
        )
        for line in cells:
            table.add_row(*(Text(cell) for cell in line))
        self.console.print(table)

    def fields(self, record: dict[str, Any]) -> None:
        """A mapping as ``name  value`` lines."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for name, value in record.items():
            table.add_row(Text(name), Text(_cell(value)))
        self.console.print(table)

    def message(self, text: str) -> None:
        """A line for people (nothing with ``--json``)."""
        if not self.as_json:
            self.console.print(text, markup=False, highlight=False)

    def error(self, text: str) -> None:
        """A line on stderr."""
        self.errors.print(text, markup=False, highlight=False)

    def failure(self, kind: str, message: str, **extra: Any) -> None:
        """A failed command: ``Kind: message`` on stderr, or with ``--json`` the error object
        an HTTP client gets, on stdout (``extra`` holds more lines, a traceback)."""
        if self.as_json:
            error = {"kind": kind, "message": message, **extra}
            sys.stdout.write(json.dumps({"error": error}, ensure_ascii=False) + "\n")
            return
        self.error(f"{kind}: {message}")
        for more in extra.values():
            self.error(str(more))

    def progress(self, *, transfer: bool = False) -> Progress:
        """A progress display, shown only on a terminal (and never with ``--json``)."""
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
        if transfer:
            columns += [DownloadColumn(), TransferSpeedColumn()]
        columns.append(TimeElapsedColumn())
        shown = self.errors.is_terminal and not self.as_json
        return Progress(*columns, console=self.errors, disable=not shown, transient=True)


def _column(name: str, cells: list[str]) -> Column:
    """A column: ids are never cut (a shortened id names nothing), other cells fold."""
    if name == "id" or name.endswith("_id"):
        return Column(name, no_wrap=True, min_width=max(map(len, [name, *cells])))
    return Column(name, overflow="fold")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
