"""What the stateful fake CLIs share: an atomic save of their JSON state and the fault
hook that makes a chosen call fail (tests/fakes/windows and tests/fakes/mac use them)."""

from __future__ import annotations

import json
import os
from typing import Any


def save(path: str, data: dict[str, Any]) -> None:
    """Write the state atomically."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def take_fault(data: dict[str, Any], tool: str, command: str) -> dict[str, Any] | None:
    """The fault that fires for this call, if any (its counters are updated in `data`)."""
    for fault in data.get("faults", []):
        if fault.get("tool", tool) != tool or fault.get("match", "") not in command:
            continue
        if fault.get("after", 0) > 0:
            fault["after"] -= 1
            continue
        if fault.get("times", 1) > 0:
            fault["times"] = fault.get("times", 1) - 1
            return fault
    return None
