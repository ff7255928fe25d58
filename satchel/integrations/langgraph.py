"""LangGraph checkpoints in satchel: ``SatchelSaver``, a ``BaseCheckpointSaver`` keeping each
thread in a session (install with ``pip install 'satchel[langgraph]'``; see
docs/langgraph.md)."""

from ._langgraph import SatchelSaver as SatchelSaver
from ._langgraph import SaverOpener as SaverOpener
from ._langgraph_upkeep import ChannelBlob as ChannelBlob

__all__ = ["ChannelBlob", "SatchelSaver", "SaverOpener"]
