"""The session, storage and hook actors (issues 4-6)."""
