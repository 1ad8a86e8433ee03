"""CheckSubscriptions: decide per letter whether it goes to the Berichtenbox, on paper, or both.

The stream's policy decides first (`paper_only` needs no check). Otherwise the sender's bulk
subscription list decides when it is at most 7 days old; else GLOBE's synchronous WUS check
`ValidateAbonnementen`, in calls of at most 250 BSNs, paced per connection. Logius will stop
filtering on subscriptions after the GLOBE migration, so bbconnect always checks itself. The report
says which source decided each letter's route.

A WUS fault or timeout is not an answer: each call is tried again with backoff (`WUS_ATTEMPTS`,
within `WUS_BUDGET_SECONDS`). When WUS stays down, a bulk list that has arrived in the meantime
decides; without one the chunk waits and asks again later (the state machine's wait, doubling from
`SUBSCRIPTION_RETRY_SECONDS`; `SubscriptionChecksWaiting` counts each wait and an alarm watches it),
until the chunk's deadline: then its letters go on paper, with the deadline as the route's source.
Paper is never the answer to a check that could not be made.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bbconnect.adapters.logius import LogiusRefused, LogiusUnavailable
from bbconnect.chunking import batches_of
from bbconnect.deadlines import DEADLINE_SOURCE, at_deadline, passed, subscription_retry_seconds
from bbconnect.ebms import message as ebms
from bbconnect.ledger import encode_routes
from bbconnect.logius import abonnementen
from bbconnect.service import keys
from bbconnect.service.channels import channel_for
from bbconnect.service.context import Services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.contracts.intake import ChunkFile
from bbconnect.service.contracts.routing import Routed, RouteEntry, Waiting
from bbconnect.service.outbound import build_message
from bbconnect.service.workfiles import ChunkFiles, read_chunk
from bbconnect.status import Route, Status
from bbconnect.tenants import Connection, Organisation, Stream, TenantConfig

WUS_MAX_BSNS = 250
BULK_MAX_AGE = timedelta(days=7)
WUS_ATTEMPTS = 3  # tries of one WUS call before the chunk waits
WUS_BUDGET_SECONDS = 120.0  # of the function's 300 s: the tries of a chunk's calls together


def route_for(policy: str, subscribed: bool | None) -> Route:
    if policy == "paper_only" or not subscribed:
        return Route.PAPER
    return Route.BOTH if policy == "digital_and_paper" else Route.DIGITAL


def wus_backoff(attempt: int) -> float:
    """Seconds before try `attempt + 1` of a WUS call (1, 2, 4, ... at most 8)."""
    return float(min(8, 2 ** max(0, attempt - 1)))


def bulk_list_key(sender_oin: str) -> str:
    return keys.bulk_list(sender_oin)


def fresh_as_of(cached: dict[str, Any] | None, now: datetime) -> datetime | None:
    """The date of a cached bulk list when it is fresh enough to decide (at most `BULK_MAX_AGE`)."""
    if not cached:
        return None
    as_of = datetime.fromisoformat(cached["as_of"])
    return as_of if now - as_of <= BULK_MAX_AGE else None


def fresh_bulk_list(services: Services, sender_oin: str, now: datetime) -> dict[str, Any] | None:
    cached = services.work.get_json_or_none(keys.bulk_list(sender_oin))
    return cached if fresh_as_of(cached, now) is not None else None


class WusDown(Exception):
    """WUS gave no answer for a call after every try."""


def _wus(connection_config: Connection, services: Services, sender_oin: str, berichttype: str, bsns: list[str], *,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, bool]:
    connection = services.logius(connection_config)
    pause = 1.0 / connection_config.wus_calls_per_second
    started = clock()
    answers: dict[str, bool] = {}
    for number, part in enumerate(batches_of(bsns, WUS_MAX_BSNS)):
        if number:
            sleep(pause)  # stay under the connection's rate for the synchronous check
        for attempt in range(1, WUS_ATTEMPTS + 1):
            try:
                answers.update(connection.validate_subscriptions(sender_oin, berichttype, list(part)))
                break
            except (LogiusUnavailable, LogiusRefused) as error:
                # A fault (an ApplicationFault too: GLOBE says so for passing trouble as well) or a
                # timeout is no answer about these citizens: try again, then wait, never paper.
                if attempt == WUS_ATTEMPTS or clock() - started + wus_backoff(attempt) > WUS_BUDGET_SECONDS:
                    raise WusDown(str(error)) from error
                sleep(wus_backoff(attempt))
    return answers


def wait_or_deadline(problem: str, *, deadline: datetime | None, now: datetime, waits: int, base: int) -> Waiting | str:
    """WUS gave no answer and no bulk list decides: before the deadline the chunk waits and asks again
    (`Waiting`); at the deadline its letters go on paper, and this is their route's source."""
    if deadline is None or not passed(deadline, now):
        return Waiting(waits=waits + 1, reason=f"subscription check unavailable: {problem}",
                       retry_seconds=subscription_retry_seconds(waits, base=base, deadline=deadline, now=now))
    return f"{DEADLINE_SOURCE} ({at_deadline(deadline)}): the subscription check was unavailable until then ({problem})"


def routes_of(chunk: ChunkFile, policy: str, subscribed: dict[str, bool], source: str) -> dict[str, RouteEntry]:
    """Each letter's route by the stream's policy and its citizen's subscription, and what decided it."""
    return {letter.reference: RouteEntry(route=route_for(policy, subscribed.get(letter.bsn)), source=source)
            for letter in chunk.letters}


def route_source_of(routes: dict[str, RouteEntry]) -> str:
    """What decided the chunk's routes, as the chunk's record says it (one source, or all of them)."""
    sources = {entry.source or "" for entry in routes.values()}
    return sources.pop() if len(sources) == 1 else ", ".join(sorted(sources))


def check_subscriptions(event: dict[str, Any], services: Services, *, now: datetime | None = None,
                        sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """{"waiting": false, "digital", "paper"} once the chunk's routes are decided; {"waiting": true, "waits",
    "retry_seconds", "reason"} when the check could not be made and the chunk must ask again later."""
    task = ChunkTask.model_validate(event)
    now = now or services.clock()
    chunk = read_chunk(services.work, task.chunk.key)
    files = ChunkFiles.of(services.work, chunk)
    routes = files.routes()
    if routes is None:
        decided = _decide_routes(chunk, task.waits, services, now, sleep)
        if isinstance(decided, Waiting):
            return decided.dump()
        routes = decided
        files.write_routes(routes)
    # The letters are ROUTED: each its route, the chunk what decided them.
    services.letters.chunk_step(
        chunk.tenant, chunk.batch_id, chunk.index, Status.ROUTED,
        routes=encode_routes([letter.reference for letter in chunk.letters],
                             {reference: entry.route.value for reference, entry in routes.items()}),
        route_source=route_source_of(routes),
    )
    digital = sum(1 for entry in routes.values() if entry.route != Route.PAPER)
    return Routed(digital=digital, paper=len(routes) - digital).dump()


def _decide_routes(chunk: ChunkFile, waits: int, services: Services, now: datetime,
                   sleep: Callable[[float], None]) -> dict[str, RouteEntry] | Waiting:
    config = services.configs.get(chunk.tenant)
    stream = config.streams[chunk.stream]
    if stream.policy == "paper_only":
        return routes_of(chunk, stream.policy, {}, "policy paper_only")
    sender = config.organisations[chunk.sender]
    bsns = sorted({letter.bsn for letter in chunk.letters})
    bulk = fresh_bulk_list(services, sender.oin, now)
    if bulk is None:
        try:
            answers = _wus(_connection_of(config, chunk), services, sender.oin, stream.code, bsns, sleep=sleep)
            return routes_of(chunk, stream.policy, answers, "wus")
        except WusDown as error:
            bulk = fresh_bulk_list(services, sender.oin, now)  # one may have come in the meantime
            if bulk is None:
                waited = wait_or_deadline(str(error), deadline=chunk.deadline, now=now, waits=waits,
                                          base=services.settings.subscription_retry_seconds)
                return waited if isinstance(waited, Waiting) else routes_of(chunk, stream.policy, {}, waited)
    return routes_of(chunk, stream.policy, _from_bulk(bulk, bsns, stream), f"bulk list of {bulk['as_of'][:10]}")


def _from_bulk(bulk: dict[str, Any], bsns: list[str], stream: Stream) -> dict[str, bool]:
    return {bsn: abonnementen.is_subscribed(bulk["table"], bsn, stream.code) for bsn in bsns}


def _connection_of(config: TenantConfig, chunk: ChunkFile) -> Connection:
    if chunk.connection is None:
        raise LookupError(f"chunk {chunk.index} of batch {chunk.batch_id} has no connection to check subscriptions over")
    return config.connections[chunk.connection]


# ---------------------------------------------------------------------- the bulk list
def request_bulk_lists(services: Services, tenant: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Ask GLOBE for the subscriptions of each digital sender of a tenant: the whole set when there
    is no fresh list, the mutations since the list's date otherwise. The answers arrive later at
    the inbound endpoint (`store_bulk_answer`)."""
    now = now or datetime.now(UTC)
    config = services.configs.get(tenant)
    asked = []
    for organisation in config.organisations.values():
        connection_config = config.connection_for(organisation.id)
        if connection_config is not None:
            asked.append(_request_bulk_list(services, tenant, organisation, connection_config, now))
    return asked


def _request_bulk_list(services: Services, tenant: str, organisation: Organisation, connection_config: Connection,
                       now: datetime) -> dict[str, Any]:
    since = fresh_as_of(services.work.get_json_or_none(keys.bulk_list(organisation.oin)), now)
    request_id = str(uuid.uuid4())
    channel = channel_for(connection_config, ebms.ACTION_A_REQUEST, services.configs.cpa(tenant, connection_config))
    outbound = build_message(
        channel, action=ebms.ACTION_A_REQUEST, conversation_id=request_id, now=now,
        payloads=(ebms.Payload(content_id=f"{request_id}@bbconnect", content_type="application/xml",
                               data=abonnementen.build_request(organisation.oin, request_id, since=since)),),
        attempt_seconds=services.settings.http_timeout_seconds,
        signing_identity=lambda: _signing_identity(services, connection_config))
    services.batches.record_bulk_request(request_id, sender_oin=organisation.oin, tenant=tenant,
                                         mutations_since=since.isoformat() if since else None, requested_at=now.isoformat())
    try:
        answer = services.logius(connection_config).post_ebms(outbound.headers, outbound.body, endpoint=channel.endpoint)
        state = f"HTTP {answer.status}"
    except LogiusUnavailable as error:
        state = f"not sent: {error}"
    return {"sender_oin": organisation.oin, "request_id": request_id, "kind": "mutations" if since else "full", "state": state}


def _signing_identity(services: Services, connection: Connection) -> tuple[bytes, bytes]:
    if services.secrets is None:
        raise LookupError("no secrets to sign with")
    return services.secrets.signing_identity(connection.certificate)


def store_bulk_answer(message: Any, payload: bytes, services: Services) -> None:
    """Merge a GLOBE-R-A answer into the sender's cached list (kept in the encrypted work bucket)."""
    answer = abonnementen.parse_answer(payload)
    request = services.batches.bulk_request(answer.request_id)
    mutations = bool(request and request.mutations_since)
    cached = services.work.get_json_or_none(keys.bulk_list(answer.sender_oin))
    if mutations and cached is None:
        mutations = False  # nothing to apply mutations to: keep what the answer says
    table = abonnementen.merge(cached["table"] if cached else None, answer, mutations=mutations)
    services.work.put(keys.bulk_list(answer.sender_oin), json.dumps({
        "sender_oin": answer.sender_oin, "as_of": answer.as_of.isoformat(), "request_id": answer.request_id,
        "table": {berichttype: sorted(bsns) for berichttype, bsns in table.items()},
    }).encode(), "application/json")
