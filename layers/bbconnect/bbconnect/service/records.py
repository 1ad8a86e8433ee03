"""The batches table's records as the services read them: typed, keyed by what they are about (a GLOBE
BatchID, a MessageId), never by the table's `pk`. `adapters.batches.BatchRepository` makes them from
DynamoDB items (numbers come back as Decimal, sets as sets); nothing else sees an item."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GlobeState = Literal["created", "sending", "acknowledged", "refused", "expired"]
FINAL_GLOBE_STATES: tuple[GlobeState, ...] = ("acknowledged", "refused", "expired")


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GlobeRecord(_Record):
    """`globe#<GLOBE BatchID>`: the ebMS delivery of one GLOBE batch (see `adapters.batches`)."""

    globe_batch_id: str
    state: GlobeState = "created"
    generation: int = 1  # a record from before generations is on its first
    batch_id: str
    chunk: int
    tenant: str
    connection: str
    chunk_key: str | None = None
    deadline: datetime | None = None
    letters: int = 0
    globe_letters: int | None = None  # the Bericht elements in the GLOBE batch, once counted
    transport: Literal["direct", "adapter"] = "direct"
    # the channel, as the connection's CPA sets it
    endpoint: str
    cpa_id: str
    from_oin: str
    to_oin: str
    from_party_type: str = "urn:osb:oin"
    to_party_type: str = "urn:osb:oin"
    sync_reply: bool = True
    reliable: bool = True
    retries: int = 0
    retry_interval_seconds: int = 60
    persist_duration_seconds: int | None = None
    channel_source: str | None = None
    # the current generation's message
    message_id: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body_key: str | None = None
    payload_key: str | None = None
    payload_offset: int | None = None
    message_built_at: str | None = None
    ack_references: list[list[str]] = Field(default_factory=list)
    ack_certificate: str | None = None
    earlier_messages: list[str] = Field(default_factory=list)
    renewed_reason: str | None = None
    # its attempts
    attempts: int = 0
    first_attempt_at: str | None = None
    last_attempt_at: str | None = None
    throttled_at: str | None = None
    handed_over_at: str | None = None
    last_problem: str | None = None
    reason: str | None = None
    acknowledged_at: str | None = None
    created_at: str | None = None
    # the executions waiting for it, and those told how it ended
    task_tokens: frozenset[str] = frozenset()
    reported_tokens: frozenset[str] = frozenset()
    task_token: str | None = None  # a record from before task_tokens kept one
    reported_at: str | None = None
    # its processing report, once it arrived
    result_key: str | None = None
    result_message_id: str | None = None
    result_at: str | None = None
    # its letters' SENT status events, once all were put on the bus
    status_events_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_GLOBE_STATES

    def waiting_tokens(self, *, unreported_only: bool = True) -> list[str]:
        """The task tokens of the executions waiting for this GLOBE batch (a record from before kept
        one `task_token`, reported when `reported_at` is set)."""
        tokens, reported = set(self.task_tokens), set(self.reported_tokens)
        if self.task_token:
            tokens.add(self.task_token)
            if self.reported_at and not self.task_tokens:
                reported.add(self.task_token)
        return sorted(tokens - reported) if unreported_only else sorted(tokens)


class SignalRecord(_Record):
    """`signal#<MessageId>`: an MSH signal of ours on its way to the other party's endpoint."""

    message_id: str
    state: Literal["created", "delivered", "failed"] = "created"
    tenant: str
    connection: str
    endpoint: str
    headers: dict[str, str] = Field(default_factory=dict)
    body_key: str
    action: str | None = None
    ref_to_message_id: str | None = None
    retries: int = 0
    retry_interval_seconds: int = 60
    attempts: int = 0
    next_attempt_at: datetime | None = None


class InboundRecord(_Record):
    """`inbound#<CPAId>#<MessageId>`: an inbound message accepted, with the answer it was given."""

    action: str | None = None
    received_at: datetime | None = None
    response_headers: dict[str, str] = Field(default_factory=dict)
    response_body: str = ""
    processed: bool = False
    signal: str | None = None  # the MessageId of our asynchronous answer, when it went as its own message


class BulkRequest(_Record):
    """`bulk#<request id>`: a GLOBE-R-A-Request of ours."""

    request_id: str
    sender_oin: str | None = None
    tenant: str | None = None
    mutations_since: str | None = None
    requested_at: str | None = None


def key_suffix(item: dict[str, Any], prefix: str) -> str:
    """What an item's `pk` names after its prefix (`globe#<id>` -> `<id>`)."""
    return str(item["pk"])[len(prefix):]
