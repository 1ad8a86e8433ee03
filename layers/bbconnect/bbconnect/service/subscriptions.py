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

from bbconnect.adapters import transport
from bbconnect.adapters.logius import LogiusConnection, LogiusRefused, LogiusUnavailable
from bbconnect.chunking import batches_of
from bbconnect.deadlines import DEADLINE_SOURCE, at_deadline, deadline_of, passed, subscription_retry_seconds
from bbconnect.ebms import message as ebms
from bbconnect.ledger import encode_routes
from bbconnect.logius import abonnementen
from bbconnect.service import keys
from bbconnect.service.channels import channel_for
from bbconnect.service.context import Services
from bbconnect.service.outbound import build_message
from bbconnect.status import Route, Status

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
    return f"subscriptions/{sender_oin}.json"


def fresh_bulk_list(services: Services, sender_oin: str, now: datetime) -> dict | None:
    cached = services.work.get_json_or_none(bulk_list_key(sender_oin))
    if cached and now - datetime.fromisoformat(cached["as_of"]) <= BULK_MAX_AGE:
        return cached
    return None


class WusDown(Exception):
    """WUS gave no answer for a call after every try."""


def _wus(connection_config, services: Services, sender_oin: str, berichttype: str, bsns: list[str], *,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, bool]:
    connection = LogiusConnection(connection_config, ca_bundle=services.settings.logius_ca_bundle,
                                  timeout=services.settings.http_timeout_seconds)
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


def check_subscriptions(event: dict, services: Services, *, now: datetime | None = None,
                        sleep: Callable[[float], None] = time.sleep) -> dict:
    """{"waiting": false, "digital", "paper"} once the chunk's routes are decided; {"waiting": true, "waits",
    "retry_seconds", "reason"} when the check could not be made and the chunk must ask again later."""
    now = now or datetime.now(UTC)
    chunk = services.work.get_json(event["chunk"]["key"])
    config = services.configs.get(chunk["tenant"])
    stream = config.streams[chunk["stream"]]
    sender = config.organisations[chunk["sender"]]
    routes_key = keys.chunk(chunk["batch_id"], chunk["index"], "routes.json")
    routes = services.work.get_json_or_none(routes_key)
    if routes is None:
        subscribed: dict[str, bool] = {}
        source = "policy paper_only"
        if stream.policy != "paper_only":
            bsns = sorted({letter["bsn"] for letter in chunk["letters"]})
            bulk = fresh_bulk_list(services, sender.oin, now)
            if bulk is None:
                source = "wus"
                try:
                    subscribed = _wus(config.connections[chunk["connection"]], services, sender.oin, stream.code, bsns, sleep=sleep)
                except WusDown as error:
                    bulk = fresh_bulk_list(services, sender.oin, now)  # one may have come in the meantime
                    if bulk is None:
                        deadline = deadline_of(chunk)
                        if not passed(deadline, now):
                            waits = int(((event.get("subscriptions") or {}).get("routes") or {}).get("waits") or 0)
                            return {"waiting": True, "waits": waits + 1, "reason": f"subscription check unavailable: {error}",
                                    "retry_seconds": subscription_retry_seconds(
                                        waits, base=services.settings.subscription_retry_seconds, deadline=deadline, now=now)}
                        source = (f"{DEADLINE_SOURCE} ({at_deadline(deadline)}): the subscription check was unavailable "
                                  f"until then ({error})")
            if bulk is not None:
                source = f"bulk list of {bulk['as_of'][:10]}"
                subscribed = {bsn: abonnementen.is_subscribed(bulk["table"], bsn, stream.code) for bsn in bsns}
        routes = {
            letter["reference"]: {"route": route_for(stream.policy, subscribed.get(letter["bsn"])).value, "source": source}
            for letter in chunk["letters"]
        }
        services.work.put_json(routes_key, routes)
    sources = {route["source"] for route in routes.values()}
    services.letters.chunk_step(
        chunk["tenant"], chunk["batch_id"], chunk["index"], Status.ROUTED,
        routes=encode_routes([letter["reference"] for letter in chunk["letters"]],
                             {reference: route["route"] for reference, route in routes.items()}),
        route_source=sources.pop() if len(sources) == 1 else ", ".join(sorted(sources)),
    )
    digital = sum(1 for r in routes.values() if r["route"] != Route.PAPER)
    return {"waiting": False, "digital": digital, "paper": len(routes) - digital}


# ---------------------------------------------------------------------- the bulk list
def request_bulk_lists(services: Services, tenant: str, *, now: datetime | None = None) -> list[dict]:
    """Ask GLOBE for the subscriptions of each digital sender of a tenant: the whole set when there
    is no fresh list, the mutations since the list's date otherwise. The answers arrive later at
    the inbound endpoint (`store_bulk_answer`)."""
    now = now or datetime.now(UTC)
    config = services.configs.get(tenant)
    asked = []
    for organisation in config.organisations.values():
        connection_config = config.connection_for(organisation.id)
        if connection_config is None:
            continue
        cached = services.work.get_json_or_none(bulk_list_key(organisation.oin))
        since = datetime.fromisoformat(cached["as_of"]) if cached and now - datetime.fromisoformat(cached["as_of"]) <= BULK_MAX_AGE else None
        request_id = str(uuid.uuid4())
        channel = channel_for(connection_config, ebms.ACTION_A_REQUEST, services.configs.cpa(tenant, connection_config))
        outbound = build_message(
            channel, action=ebms.ACTION_A_REQUEST, conversation_id=request_id, now=now,
            payloads=(ebms.Payload(content_id=f"{request_id}@bbconnect", content_type="application/xml",
                                   data=abonnementen.build_request(organisation.oin, request_id, since=since)),),
            attempt_seconds=services.settings.http_timeout_seconds,
            signing_identity=lambda connection=connection_config: transport.signing_identity(connection.certificate))
        services.batches.record_bulk_request(request_id, sender_oin=organisation.oin, tenant=tenant,
                                             mutations_since=since.isoformat() if since else None, requested_at=now.isoformat())
        headers, body = outbound.headers, outbound.body
        connection = LogiusConnection(connection_config, ca_bundle=services.settings.logius_ca_bundle,
                                      timeout=services.settings.http_timeout_seconds)
        try:
            answer = connection.post_ebms(headers, body, endpoint=channel.endpoint)
            state = f"HTTP {answer.status}"
        except LogiusUnavailable as error:
            state = f"not sent: {error}"
        asked.append({"sender_oin": organisation.oin, "request_id": request_id, "kind": "mutations" if since else "full",
                      "state": state})
    return asked


def store_bulk_answer(message, payload: bytes, services: Services) -> None:
    """Merge a GLOBE-R-A answer into the sender's cached list (kept in the encrypted work bucket)."""
    answer = abonnementen.parse_answer(payload)
    request = services.batches.get(f"bulk#{answer.request_id}") or {}
    mutations = bool(request.get("mutations_since"))
    cached = services.work.get_json_or_none(bulk_list_key(answer.sender_oin))
    if mutations and cached is None:
        mutations = False  # nothing to apply mutations to: keep what the answer says
    table = abonnementen.merge(cached["table"] if cached else None, answer, mutations=mutations)
    services.work.put(bulk_list_key(answer.sender_oin), json.dumps({
        "sender_oin": answer.sender_oin, "as_of": answer.as_of.isoformat(), "request_id": answer.request_id,
        "table": {berichttype: sorted(bsns) for berichttype, bsns in table.items()},
    }).encode(), "application/json")
