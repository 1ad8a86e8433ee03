"""The bulk subscription list (AbonnementService, ebMS action `GLOBE-R-A-Request`).

The request `AbonnementAanvraag` asks for the subscriptions to one sender: of a list of BSNs, the
mutations since a date, or the whole set. GLOBE answers asynchronously (Logius: within four hours,
gzipped). The answer's schema (`AbonnementAntwoord.xsd`) is not public: this reads the answer by
local element names — `BerichtLeverancier/OIN`, `VerzoekId`, `PeilDatum`, and per `Abonnement` a
`BSN`, an optional `BerichtType` and `Actief` — and is lenient about namespaces, so the real
schema can be fitted in one place when Logius' documents are at hand.
"""
from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from bbconnect.xmlsafe import format_xs_datetime, parse_xml, parse_xs_datetime

NAMESPACE = "http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02"
# The answer reaches bbconnect through API Gateway and Lambda: at most bbconnect.limits.INBOUND_BODY_BYTES
# (4.45 MiB) gzipped. A list of subscriptions packs about 11 to 1 (750,000 BSNs: 49.5 MB of XML in
# 4.59 MB), so an honest answer unpacks to under 64 MiB; more is a gzip bomb. Parsing and merging
# the largest (750,000 BSNs) peaks at 665 MB: ReceiveResultFunction has 1536 MB.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Subscription:
    bsn: str
    berichttype: str | None  # None: every berichttype of the sender
    active: bool


@dataclass(frozen=True)
class BulkAnswer:
    sender_oin: str
    request_id: str
    as_of: datetime
    subscriptions: tuple[Subscription, ...]

    def __repr__(self) -> str:  # never print the BSNs
        return (f"BulkAnswer(sender_oin={self.sender_oin!r}, request_id={self.request_id!r}, as_of={self.as_of}, "
                f"n={len(self.subscriptions)})")


def build_request(sender_oin: str, request_id: str, *, bsns: Sequence[str] | None = None,
                  since: datetime | None = None) -> bytes:
    if bsns is not None and since is not None:
        raise ValueError("ask for a BSN list or for mutations since a date, not both")
    root = etree.Element(f"{{{NAMESPACE}}}AbonnementAanvraag", nsmap={"ns0": NAMESPACE})
    etree.SubElement(etree.SubElement(root, "BerichtLeverancier"), "OIN").text = sender_oin
    etree.SubElement(root, "VerzoekId").text = request_id
    if bsns is not None:
        listing = etree.SubElement(root, "BSNLijst")
        for bsn in bsns:
            etree.SubElement(listing, "BSN").text = bsn
    elif since is not None:
        etree.SubElement(root, "MutatieDatum").text = format_xs_datetime(since)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _text(element, name: str) -> str | None:
    found = element.find(f"{{*}}{name}")
    return found.text.strip() if found is not None and found.text else None


def parse_answer(data: bytes) -> BulkAnswer:
    if data[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            data = unzipped.read(MAX_ANSWER_BYTES + 1)
        if len(data) > MAX_ANSWER_BYTES:
            raise ValueError(f"the subscription answer unpacks to more than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB")
    root = parse_xml(data, max_bytes=MAX_ANSWER_BYTES)
    if etree.QName(root).localname != "AbonnementAntwoord":
        raise ValueError(f"not an AbonnementAntwoord: <{etree.QName(root).localname}>")
    sender = root.find("{*}BerichtLeverancier")
    sender_oin = _text(sender, "OIN") if sender is not None else None
    request_id, as_of = _text(root, "VerzoekId"), _text(root, "PeilDatum")
    if not sender_oin or not request_id or not as_of:
        raise ValueError("the subscription answer lacks BerichtLeverancier/OIN, VerzoekId or PeilDatum")
    subscriptions = []
    for item in root.iter("{*}Abonnement"):
        bsn = _text(item, "BSN")
        if not bsn:
            raise ValueError("an Abonnement without a BSN")
        active = (_text(item, "Actief") or "true").lower() in ("true", "1")
        subscriptions.append(Subscription(bsn=bsn, berichttype=_text(item, "BerichtType"), active=active))
    return BulkAnswer(sender_oin, request_id, parse_xs_datetime(as_of), tuple(subscriptions))


def merge(current: dict[str, list[str]] | None, answer: BulkAnswer, *, mutations: bool) -> dict[str, set[str]]:
    """Subscribed BSNs per berichttype (`*` = every type), from a full answer or by applying mutations."""
    table: dict[str, set[str]] = {k: set(v) for k, v in (current or {}).items()} if mutations else {}
    for item in answer.subscriptions:
        bucket = table.setdefault(item.berichttype or "*", set())
        (bucket.add if item.active else bucket.discard)(item.bsn)
    return table


def is_subscribed(table: dict[str, list[str] | set[str]], bsn: str, berichttype: str) -> bool:
    return bsn in table.get(berichttype, ()) or bsn in table.get("*", ())

