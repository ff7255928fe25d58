"""The sandboxed Lua runtime and the globals it exposes (issue 7)."""
