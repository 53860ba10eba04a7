"""The health of one component, as ``linkwatch stack status`` reports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

State = Literal["healthy", "unhealthy", "stopped", "busy"]


@dataclass
class ComponentStatus:
    """One row of ``linkwatch stack status``."""

    name: str
    role: str
    state: State
    version: str
    address: str
    pid: int | None
    data_dir: str
    log: str
    detail: str = ""

    def with_state(self, state: State, detail: str = "") -> ComponentStatus:
        return replace(self, state=state, detail=detail)

    @property
    def healthy(self) -> bool:
        return self.state in ("healthy", "busy")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
