"""Sessions: the session actor, its journal and variables, the manager, queries, budgets."""
