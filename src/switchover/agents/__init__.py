"""The agent registry service: agents, encrypted keys, campaigns, phone numbers, import."""

from switchover.agents.keyring import Keyring
from switchover.agents.service import AgentService

__all__ = ["AgentService", "Keyring"]
