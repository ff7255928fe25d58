"""The OpenAI Agents SDK's session memory on satchel (``pip install 'satchel[openai-agents]'``):
``SatchelSession`` stands wherever the SDK takes a session, ``SQLiteSession`` for one."""

from ._openai_agents import KEY_PREFIX as KEY_PREFIX
from ._openai_agents import SatchelSession as SatchelSession
