"""Adapters that put satchel behind agent frameworks' own storage interfaces: LangGraph's
checkpointer, the OpenAI Agents SDK's session and Google ADK's session and artifact services.
Each lives in a module of its own that imports its framework only when imported itself
(install it with the matching extra: ``satchel[langgraph]``, ``satchel[openai-agents]``,
``satchel[adk]``)."""
