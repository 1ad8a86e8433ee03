"""CheckSubscriptions: decide per letter whether it goes to the Berichtenbox, on paper, or both.

The stream's policy decides first (`paper_only` needs no check); otherwise GLOBE's WUS check
`ValidateAbonnementen` answers per BSN in calls of at most 250 BSNs. Logius will stop filtering on
subscriptions after the GLOBE migration, so bbconnect always checks itself.
"""
from __future__ import annotations

from bbconnect.adapters.logius import LogiusConnection, LogiusRefused, LogiusUnavailable
from bbconnect.chunking import batches_of
from bbconnect.service import keys
from bbconnect.service.context import Services, TransientError
from bbconnect.status import Route, Status

WUS_MAX_BSNS = 250


def route_for(policy: str, subscribed: bool | None) -> Route:
    if policy == "paper_only" or not subscribed:
        return Route.PAPER
    return Route.BOTH if policy == "digital_and_paper" else Route.DIGITAL


def check_subscriptions(event: dict, services: Services) -> dict:
    chunk = services.work.get_json(event["chunk"]["key"])
    config = services.configs.get(chunk["tenant"])
    stream = config.streams[chunk["stream"]]
    sender = config.organisations[chunk["sender"]]
    routes_key = keys.chunk(chunk["batch_id"], chunk["index"], "routes.json")
    routes = services.work.get_json_or_none(routes_key)
    if routes is None:
        subscribed: dict[str, bool] = {}
        source = "policy"
        if stream.policy != "paper_only":
            source = "wus"
            connection = LogiusConnection(config.connections[chunk["connection"]],
                                          ca_bundle=services.settings.logius_ca_bundle,
                                          timeout=services.settings.http_timeout_seconds)
            bsns = sorted({letter["bsn"] for letter in chunk["letters"]})
            try:
                for part in batches_of(bsns, WUS_MAX_BSNS):
                    subscribed.update(connection.validate_subscriptions(sender.oin, stream.code, list(part)))
            except LogiusUnavailable as error:
                raise TransientError(f"subscription check unavailable: {error}") from error
            except LogiusRefused as error:
                # The check itself is refused (e.g. berichttype unknown to GLOBE): paper is safe.
                source = f"wus refused ({error})"
        routes = {
            letter["reference"]: {"route": route_for(stream.policy, subscribed.get(letter["bsn"])).value, "source": source}
            for letter in chunk["letters"]
        }
        services.work.put_json(routes_key, routes)
    for letter in chunk["letters"]:
        route = routes[letter["reference"]]
        services.letters.advance(
            chunk["tenant"], letter["reference"], Status.ROUTED,
            detail=f"route {route['route']} (decided by {route['source']})",
            extra={"route": route["route"], "chunk": chunk["index"], "globe_batch_id": chunk["globe_batch_id"]},
        )
    digital = sum(1 for r in routes.values() if r["route"] != Route.PAPER)
    return {"digital": digital, "paper": len(routes) - digital}
