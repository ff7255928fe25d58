"""Tests of the framework adapters (satchel.integrations), each against its framework."""
