"""Send: the send queue's messages, one attempt and what came of it, and the Send task's output (`$.send`)."""
from __future__ import annotations

from typing import Literal

from bbconnect.service.contracts import Contract
from bbconnect.service.contracts.intake import ManifestItem


class SendRequest(Contract):
    """A GLOBE batch to deliver: the state machine's message (with its task token), or a delayed
    check the send function scheduled itself (`kind` "check")."""

    kind: Literal["check"] | None = None
    tenant: str
    batch_id: str
    chunk: ManifestItem
    task_token: str | None = None

    def check(self) -> SendRequest:
        """The delayed check that follows this message (no task token: it is on the record)."""
        return SendRequest(kind="check", tenant=self.tenant, batch_id=self.batch_id, chunk=self.chunk)


class SignalJob(Contract):
    """An asynchronous ebMS answer of ours to deliver (`service.signals`)."""

    kind: Literal["signal"] = "signal"
    tenant: str
    signal: str

    def dump(self) -> dict[str, object]:
        return {"kind": "signal", "tenant": self.tenant, "signal": self.signal}


class AttemptRequest(Contract):
    """One numbered attempt of a message (idempotent on MessageId and number)."""

    globe_batch_id: str
    message_id: str
    number: int


AttemptKind = Literal["ack", "expired", "refused", "retry", "sent"]


class AttemptOutcome(Contract):
    """`ack`: acknowledged; `expired`: GLOBE says the message outlived its TimeToLive; `refused`: no
    retry will help; `retry`: try again; `sent`: taken, the acknowledgement comes on its own."""

    result: AttemptKind
    detail: str | None = None
    at: str | None = None


class SendOutcome(Contract):
    """How a GLOBE batch ended: the Send task's output (`$.send.sent`)."""

    sent: bool
    message_id: str | None = None
    globe_batch_id: str
    attempts: int = 0
    reason: str | None = None
    acknowledged_at: str | None = None

    def dump(self) -> dict[str, object]:
        base: dict[str, object] = {"sent": self.sent, "message_id": self.message_id, "globe_batch_id": self.globe_batch_id,
                                   "attempts": self.attempts}
        if self.sent:
            base["acknowledged_at"] = self.acknowledged_at
        else:
            base["reason"] = self.reason
        return base


class SendProgress(Contract):
    """What one send-queue message did when the batch has not ended yet (for the log)."""

    waiting_until: str | None = None
    throttled: str | None = None
    attempt: int | None = None
    result: str | None = None
    next_check: str | None = None
    renewed: str | None = None
    generation: int | None = None
    handed_over: str | None = None
    adapter: str | None = None
