"""Limits of the HTTP API that code without the web stack needs (``satchel.serve``'s
signature): here, so that ``import satchel`` imports no web framework."""

from __future__ import annotations

#: The default limit of a JSON request body.
DEFAULT_MAX_JSON_BYTES = 16 << 20
