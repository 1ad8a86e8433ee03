"""Fallback: every letter's final state (`outcome.json`) and the task's answer (`$.counts`)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from bbconnect.service.contracts import Contract


class OutcomeEntry(Contract):
    """One letter's final state in `outcome.json`."""

    reference: str
    line: int
    bericht_id: str | None = None
    route: str | None = None
    route_source: str | None = None
    status: str
    reason: str | None = None
    code: str | None = None
    paper: bool = False
    paper_because: str | None = None
    address: dict[str, Any] | None = Field(default=None, repr=False)
    paper_file: str | None = None  # its file in the chunk's paper zip
    pages: int | None = None


class ChunkOutcome(Contract):
    """`outcome.json`: a chunk's letters settled, written once."""

    letters: list[OutcomeEntry]
    counts: dict[str, int] = Field(default_factory=dict)
    paper_bundle: str | None = None
    globe_batch_id: str | None = None
    sender: str | None = None  # an outcome written before it named its sender and stream has neither
    stream: str | None = None
    sent_to_logius: bool | None = None  # None: an outcome that does not say (an unfinished chunk's)


class FallbackResult(Contract):
    counts: dict[str, int]  # `$.counts`
    stream: str | None = None  # for the metrics by stream
    proof: str | None = None
    proof_error: str | None = None
