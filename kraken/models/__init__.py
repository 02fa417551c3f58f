"""ORM models (SQLModel tables).  API shapes live in ``kraken.schemas``."""

from kraken.models.core import (
    Agent,
    AgentGroup,
    AgentGroupLink,
    Branch,
    Flow,
    Job,
    LogChunk,
    Project,
    Run,
    ServerSecret,
    Stage,
    Step,
    User,
)

__all__ = [
    "Agent",
    "AgentGroup",
    "AgentGroupLink",
    "Branch",
    "Flow",
    "Job",
    "LogChunk",
    "Project",
    "Run",
    "ServerSecret",
    "Stage",
    "Step",
    "User",
]
