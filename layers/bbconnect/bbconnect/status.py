"""The life of a letter: statuses only move forward, and four of them are final."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ACCEPTED = "ACCEPTED"  # valid row, recorded, waiting for its chunk
    ROUTED = "ROUTED"  # subscription checked: digital, paper or both
    RENDERED = "RENDERED"  # PDF made and in the GLOBE batch
    SENT = "SENT"  # GLOBE batch acknowledged by Logius (ebMS)
    DELIVERED = "DELIVERED"
    PAPER = "PAPER"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


FINAL = frozenset({Status.DELIVERED, Status.PAPER, Status.FAILED, Status.REJECTED})

RANK: dict[Status, int] = {
    Status.ACCEPTED: 10,
    Status.ROUTED: 20,
    Status.RENDERED: 30,
    Status.SENT: 40,
    Status.DELIVERED: 100,
    Status.PAPER: 100,
    Status.FAILED: 100,
    Status.REJECTED: 100,
}


def may_move(current: Status | None, new: Status) -> bool:
    """A status may only move to a higher rank; a final state never changes."""
    if current is None:
        return True
    return RANK[new] > RANK[current]


class Route(StrEnum):
    DIGITAL = "digital"
    PAPER = "paper"
    BOTH = "both"  # digital_and_paper: the Berichtenbox and a paper copy
