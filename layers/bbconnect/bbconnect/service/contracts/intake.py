"""Drop -> Ingest -> the chunks: the dropped file, the execution's input, Ingest's answer and its files."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, TypeAdapter

from bbconnect.letters import Rejection
from bbconnect.service.contracts import Contract, IsoDatetime
from bbconnect.tenants import Template


class DroppedFile(Contract):
    """One object an S3 event notification announces (the intake queue's message body holds the event)."""

    bucket: str = ""
    key: str
    etag: str = ""
    size: int = 0
    version_id: str | None = None  # the inbox is versioned: this drop's bytes


class BatchStart(DroppedFile):
    """The batch execution's input for a dropped file (and Ingest's event)."""

    sha256: str = ""
    batch_id: str


class ResendStart(Contract):
    """The batch execution's input for an operator's resend (`service.resend.start_resend`)."""

    resend_of: str
    tenant: str
    references: list[str] | None = None
    requested_by: str = "operator"
    batch_id: str
    key: str
    bucket: str = ""


def ingest_event(event: dict[str, Any]) -> BatchStart | ResendStart:
    return ResendStart.model_validate(event) if event.get("resend_of") else BatchStart.model_validate(event)


class Timing(Contract):
    """`$.timing`: the Wait of AwaitResult (`poll_seconds`), the Send task's timeout, the map's concurrency."""

    poll_seconds: int
    send_timeout_seconds: int
    chunk_concurrency: int


class S3Pointer(Contract):
    bucket: str
    key: str


class StreamCounts(Contract):
    accepted: int = 0
    duplicates: int = 0  # references an earlier file already used


class IngestResult(Contract):
    """Ingest's answer: `$` of the batch execution from then on (`$.chunk_count`, `$.manifest`, `$.timing`)."""

    batch_id: str
    tenant: str
    file: str
    timing: Timing
    chunk_count: int = 0
    status: Literal["ok", "bad_file"] = "ok"
    error: str | None = None
    streams: dict[str, StreamCounts] | None = None
    received: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    manifest: S3Pointer | None = None
    resend_of: str | None = None
    skipped_in_flight: list[str] | None = None


class ManifestItem(Contract):
    """One chunk in `manifest.json`, the map's item (`$.chunk` of each child execution)."""

    index: int
    key: str
    globe_batch_id: str
    letters: int = 0


MANIFEST = TypeAdapter(list[ManifestItem])
REJECTIONS = TypeAdapter(list[Rejection])


class ChunkLetter(Contract):
    """A letter in its chunk's `letters.json`: the validated row (`bbconnect.letters.Letter`, checked at
    intake and not again) and its BerichtID."""

    line: int
    reference: str
    sender: str = ""
    stream: str = ""
    bsn: str = Field(default="", repr=False)
    subject: str = ""
    text: str = Field(default="", repr=False)
    publish_at: IsoDatetime | None = None
    act_before: IsoDatetime | None = None
    template: Template | None = None
    data: dict[str, Any] = Field(default_factory=dict, repr=False)
    attachments: list[str] = Field(default_factory=list)
    address: dict[str, Any] | None = Field(default=None, repr=False)
    bericht_id: str


class ChunkFile(Contract):
    """`letters.json`: one GLOBE batch's letters (one sender, one stream, one connection) and its deadline."""

    tenant: str
    batch_id: str
    index: int
    globe_batch_id: str
    sender: str
    stream: str
    connection: str | None = None
    source_key: str
    deadline: IsoDatetime | None = None  # a chunk written before chunks had one has none
    letters: list[ChunkLetter]
    resend_of: str | None = None

    def named(self) -> dict[str, Any]:
        """What names the chunk (tenant, batch, index, GLOBE BatchID, sender, stream...), without its
        letters: for a status event, which needs no letter content."""
        return self.model_dump(mode="json", exclude={"letters"}, exclude_none=True)


class SourceFile(Contract):
    """`source.json`: the file the batch came from and its counts."""

    tenant: str
    file: str
    received: int
    accepted: int
    rejected: int
    ingested_at: str | None = None
    resend_of: str | None = None
    skipped_in_flight: list[str] | None = None


class BadFileReport(Contract):
    """`<tenant>/reports/<batch id>/error.json`: why a file was not taken."""

    batch_id: str
    tenant: str | None = None
    file: str
    status: Literal["bad_file"] = "bad_file"
    error: str
    counts: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(("received", "rejected", "delivered", "paper",
                                                                          "failed"), 0))
    letters: list[Any] = Field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # `tenant` stays, null for a file outside any tenant
