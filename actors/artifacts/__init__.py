"""Artifacts: versions, their index and query, sharing and audit, the storage actor."""
