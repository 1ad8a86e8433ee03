"""What a local run's tenants receive as status events: one inbox file a tenant.

On AWS a tenant's rule on the status-event bus (made by `bbconnect ops subscribe`) delivers to an SQS
queue in the tenant's own account. Locally the rules are the same ones, made by the same code, and
moto's EventBridge matches every event against them as AWS would: which tenant hears of an event is
decided by the rules, not here. Only the last hop differs. What a rule delivers to a subscriber's
queue is written to that tenant's inbox, a JSON Lines file, each event as EventBridge's SQS target
delivers it, in the order it arrived.

Why not a moto SQS queue: moto's SQS recounts every message of a queue on each send and receive (for
the queue's attributes), so a queue that takes a big run's events (three or so per letter) makes the
run quadratic. A 20,000-letter demo did not finish in an hour that way.

Deliveries to any other queue, or from a rule of another target kind, go on through moto untouched.
"""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

# The envelope fields EventBridge delivers to a target, in its order.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail", "replay-name")

_lock = threading.Lock()  # guards _active and the patch
_active: list[SubscriberInboxes] = []
_saved_send: Any = None


class SubscriberInboxes:
    """The inboxes of one local environment: tenant -> its queue's name, and a file a tenant."""

    def __init__(self, folder: Path, account: str):
        self.folder = Path(folder)
        self.account = account
        self._queues: dict[str, str] = {}  # queue name -> tenant
        self._lock = threading.Lock()  # one writer or reader of the files at a time

    # ------------------------------------------------------------------ who subscribes
    def add(self, tenant: str, queue_name: str) -> None:
        with self._lock:
            for name, owner in list(self._queues.items()):
                if owner == tenant:
                    del self._queues[name]
            self._queues[queue_name] = tenant

    def discard(self, tenant: str) -> None:
        with self._lock:
            for name, owner in list(self._queues.items()):
                if owner == tenant:
                    del self._queues[name]

    def __contains__(self, tenant: object) -> bool:
        with self._lock:
            return tenant in self._queues.values()

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(set(self._queues.values()))

    # ------------------------------------------------------------------ delivery (moto's rule calls this)
    def deliver(self, queue_name: str, event: dict[str, Any]) -> bool:
        """Add an event a rule delivers to `queue_name` to its tenant's inbox; False when no tenant of
        this environment has that queue (moto delivers it then)."""
        with self._lock:
            tenant = self._queues.get(queue_name)
            if tenant is None:
                return False
            line = json.dumps(self.as_delivered(event), ensure_ascii=False)
            path = self._inbox(tenant)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as inbox:
                inbox.write(line + "\n")
        return True

    def as_delivered(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as EventBridge's SQS target puts it in the message body: the envelope's fields
        only, `time` as ISO 8601 UTC to the second."""
        from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

        delivered = {name: event[name] for name in EVENT_FIELDS if name in event}
        delivered.setdefault("account", self.account)
        if "time" in delivered:  # as moto's SQS target does (put_events keeps it as a Unix time)
            delivered["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(float(delivered["time"])))
        return delivered

    # ------------------------------------------------------------------ reading
    def take(self, tenant: str) -> list[dict[str, Any]]:
        """Everything the tenant's inbox received since the last take or export, oldest first; the
        inbox is empty after. For a run of a few letters: a big run's go to a file (`export`)."""
        with self._lock:
            path = self._inbox(tenant)
            if not path.exists():
                return []
            with open(path, encoding="utf-8") as lines:
                events = [json.loads(line) for line in lines if line.strip()]
            path.unlink()
        return events

    def export(self, tenant: str, target: Path) -> int:
        """Move everything the tenant's inbox received since the last take or export to `target`;
        how many events."""
        with self._lock:
            path = self._inbox(tenant)
            if path.exists():
                shutil.move(path, target)
            else:
                Path(target).write_bytes(b"")
        with open(target, "rb") as lines:
            return sum(1 for line in lines if line.strip())

    def _inbox(self, tenant: str) -> Path:
        return self.folder / f"{tenant}.jsonl"

    # ------------------------------------------------------------------ lifecycle
    def install(self) -> None:
        """From now on, moto's rules deliver to this environment's subscriber queues here."""
        global _saved_send
        from moto.events.models import Rule

        with _lock:
            if not _active:
                _saved_send = Rule._send_to_sqs_queue
                original = _saved_send

                def send_to_sqs_queue(rule: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None) -> None:
                    with _lock:
                        active = list(_active)
                    for inboxes in active:
                        if inboxes.deliver(resource_id, event):
                            return
                    original(rule, resource_id, event, group_id)

                Rule._send_to_sqs_queue = send_to_sqs_queue  # type: ignore[method-assign]
            if self not in _active:
                _active.append(self)

    def uninstall(self) -> None:
        global _saved_send
        from moto.events.models import Rule

        with _lock:
            if self in _active:
                _active.remove(self)
            if not _active and _saved_send is not None:
                Rule._send_to_sqs_queue = _saved_send  # type: ignore[method-assign]
                _saved_send = None

