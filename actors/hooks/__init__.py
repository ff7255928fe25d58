"""Hooks, events, replay, fork and replay schedules."""
