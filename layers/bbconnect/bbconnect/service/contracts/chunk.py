"""A chunk's child execution: the state each of its tasks gets (the map's item, and what the tasks
before it added at their ResultPaths)."""
from __future__ import annotations

from bbconnect.service.contracts import Contract, TaskError
from bbconnect.service.contracts.intake import ManifestItem, Timing
from bbconnect.service.contracts.rendering import RenderState
from bbconnect.service.contracts.results import ResultState
from bbconnect.service.contracts.routing import SubscriptionsState
from bbconnect.service.contracts.sending import SendOutcome


class ChunkTask(Contract):
    """`tenant`, `batch_id`, `timing` and `chunk` from the map's ItemSelector; then `subscriptions`,
    `render`, `send` (or `send_error`) and `result` as the chunk's steps go."""

    tenant: str = ""
    batch_id: str = ""
    timing: Timing | None = None
    chunk: ManifestItem
    subscriptions: SubscriptionsState | None = None
    render: RenderState | None = None
    send: SendOutcome | None = None
    send_error: TaskError | None = None
    result: ResultState | None = None

    @property
    def waits(self) -> int:
        """How often the chunk has waited for its subscription check so far."""
        routes = self.subscriptions.routes if self.subscriptions is not None else None
        return getattr(routes, "waits", 0) or 0
