"""Finalize: what it gets (Ingest's answer, and `$.chunk_failure` when the map failed) and answers."""
from __future__ import annotations

from typing import Literal

from bbconnect.service.contracts import Contract, TaskError
from bbconnect.service.contracts.intake import IngestResult


class FinalizeEvent(IngestResult):
    chunk_failure: TaskError | None = None


class FinalizeResult(Contract):
    batch_id: str
    tenant: str | None
    status: Literal["completed", "bad_file"]
    error: str | None = None
    counts: dict[str, int] | None = None
    unfinished_chunks: int | None = None
    print_jobs: list[str] | None = None
    report: str

    def dump(self) -> dict[str, object]:
        answer = self.model_dump(mode="json", exclude_none=True)
        answer["tenant"] = self.tenant
        if self.status == "bad_file":
            answer["error"] = self.error
        return answer
