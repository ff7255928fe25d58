"""Session archives: export and import of a session with its artifacts."""
