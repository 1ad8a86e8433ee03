"""AwaitResult: has the chunk's processing report arrived (`$.result`)?"""
from __future__ import annotations

from typing import Literal

from bbconnect.service.contracts import Contract

ResultStatus = Literal["arrived", "waiting", "timed_out"]


class AwaitResult(Contract):
    status: ResultStatus  # `$.result.status`
    checked_at: str
    waited_seconds: int  # since the batch was acknowledged (or created)
    next_check_seconds: int  # `$.result.next_check_seconds`: the Wait before the next look


class ResultState(Contract):
    """`$.result` as the ASL keeps it (its ResultSelector: status, checked_at, next_check_seconds)."""

    status: ResultStatus
    checked_at: str | None = None
    next_check_seconds: int | None = None
