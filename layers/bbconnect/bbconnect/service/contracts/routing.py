"""CheckSubscriptions: the chunk's routes (`$.subscriptions.routes`) and `routes.json`."""
from __future__ import annotations

from typing import Literal

from pydantic import TypeAdapter

from bbconnect.service.contracts import Contract
from bbconnect.status import Route


class Routed(Contract):
    """The routes are decided (`$.subscriptions.routes.waiting` false)."""

    waiting: Literal[False] = False
    digital: int
    paper: int

    def dump(self) -> dict[str, object]:
        return {"waiting": False, "digital": self.digital, "paper": self.paper}


class Waiting(Contract):
    """The check could not be made: the chunk asks again after `retry_seconds` (`$.subscriptions.routes.retry_seconds`)."""

    waiting: Literal[True] = True
    waits: int
    reason: str
    retry_seconds: int

    def dump(self) -> dict[str, object]:
        return {"waiting": True, "waits": self.waits, "reason": self.reason, "retry_seconds": self.retry_seconds}


class RouteEntry(Contract):
    route: Route
    source: str | None = None


ROUTES = TypeAdapter(dict[str, RouteEntry])  # routes.json: reference -> its route and what decided it


class SubscriptionsState(Contract):
    """`$.subscriptions` as the next CheckSubscriptions of a waiting chunk gets it."""

    routes: Routed | Waiting | None = None
