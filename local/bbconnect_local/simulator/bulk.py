"""GLOBE's AbonnementService: the bulk subscription list (ebMS `GLOBE-R-A-Request`).

The request is documented by example only (`../shared/logius/README.md`)::

    <ns0:AbonnementAanvraag xmlns:ns0="http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02">
      <BerichtLeverancier><OIN>...</OIN></BerichtLeverancier>
      <VerzoekId>...</VerzoekId>
      <BSNLijst><BSN>...</BSN>...</BSNLijst>      (or <MutatieDatum>dateTime</MutatieDatum>, or nothing)
    </ns0:AbonnementAanvraag>

Children are read by local name, so qualified and unqualified children are both accepted.

**The answer's schema (`AbonnementAntwoord.xsd`) and its ebMS action are not public.** The
simulator answers (action `SimulatorConfig.bulk_result_action`, default `GLOBE-R-A-Result`) with a
**gzipped** document of its own design, in the same namespace, children unqualified as in the
request::

    <ns0:AbonnementAntwoord xmlns:ns0="http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02">
      <BerichtLeverancier><OIN>00000001001234567000</OIN></BerichtLeverancier>
      <VerzoekId>the request's VerzoekId</VerzoekId>
      <PeilDatum>2026-03-01T10:00:00.000+01:00</PeilDatum>      (xs:dateTime: the list is as of then)
      <Abonnementen>                                             (0..n Abonnement)
        <Abonnement>
          <BSN>999990019</BSN>
          <BerichtType>AANSLAG</BerichtType>                     (optional: absent = every berichttype)
          <Actief>true</Actief>                                  (xs:boolean)
        </Abonnement>
      </Abonnementen>
      <Fout><Code>...</Code><Omschrijving>...</Omschrijving></Fout>   (instead of Abonnementen, on refusal)
    </ns0:AbonnementAntwoord>

Which subscriptions are listed:
- a `BSNLijst`: every listed BSN once (duplicates folded), `Actief` = subscribed or not;
- a `MutatieDatum`: the BSNs whose subscription changed at or after that moment, by
  `SimulatorConfig.subscription_changes` (BSN -> datetime; a BSN not in it last changed at the Unix
  epoch), taken from `subscribed` plus the keys of `subscription_changes`, with their current state;
- nothing: the full set, every subscribed BSN (`subscribed`, plus, when `subscribed_all` is on, every
  BSN in `subscription_changes`), all `Actief` true.
With `SimulatorConfig.subscription_berichttypes` (BSN -> berichttypes) a BSN gets one Abonnement per
berichttype; otherwise one without BerichtType.

Refusals (`Fout/Code`): `XmlValidatieTegenXsdValtNegatiefUit` when the request cannot be read (no
VerzoekId, no OIN, a bad MutatieDatum, both a list and a date), `OinInCPAKomtNietOvereenMetOinInBericht`
when the OIN is neither the certificate's nor one it may ask for. These codes are borrowed from the
BerichtVerwerkService; GLOBE's real behaviour is unknown.
"""
from __future__ import annotations

import datetime as _dt
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree

from bbconnect_local.simulator._xml import (
    ABO_NS,
    element_children,
    format_local,
    local_name,
    parse_datetime,
    parse_xml,
    q,
)

EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@dataclass
class BulkRequest:
    """A read AbonnementAanvraag (holds BSNs: never log it)."""

    leverancier_oin: str | None
    verzoek_id: str | None
    bsns: list[str] | None = field(default=None, repr=False)  # a BSNLijst
    mutatie_datum: _dt.datetime | None = None
    problem: str | None = None

    @property
    def kind(self) -> str:
        if self.bsns is not None:
            return "list"
        if self.mutatie_datum is not None:
            return "mutations"
        return "full"


@dataclass(frozen=True)
class Subscription:
    bsn: str
    berichttype: str | None
    active: bool

    def __repr__(self) -> str:
        return f"Subscription(bsn=***{self.bsn[-3:]}, berichttype={self.berichttype!r}, active={self.active})"


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    for element in element_children(parent):
        if local_name(element) == name:
            return element
    return None


def parse_request(payload: bytes) -> BulkRequest:
    """Read an AbonnementAanvraag; a request that cannot be used gets `problem` set."""
    try:
        root = parse_xml(payload)
    except (etree.XMLSyntaxError, ValueError):
        return BulkRequest(None, None, problem="not well-formed XML")
    if root.tag != q(ABO_NS, "AbonnementAanvraag"):
        return BulkRequest(None, None, problem=f"root must be {{{ABO_NS}}}AbonnementAanvraag")
    leverancier = _child(root, "BerichtLeverancier")
    oin_element = _child(leverancier, "OIN") if leverancier is not None else None
    oin = (oin_element.text or "").strip() if oin_element is not None else ""
    verzoek = _child(root, "VerzoekId")
    verzoek_id = (verzoek.text or "").strip() if verzoek is not None else ""
    request = BulkRequest(oin or None, verzoek_id or None)
    listing = _child(root, "BSNLijst")
    mutatie = _child(root, "MutatieDatum")
    if listing is not None:
        request.bsns = [(b.text or "").strip() for b in element_children(listing) if local_name(b) == "BSN"]
    if mutatie is not None:
        request.mutatie_datum = parse_datetime(mutatie.text)
        if request.mutatie_datum is None:
            request.problem = "MutatieDatum is not an xs:dateTime"
    if not oin:
        request.problem = "BerichtLeverancier/OIN missing"
    elif not verzoek_id:
        request.problem = "VerzoekId missing"
    elif listing is not None and mutatie is not None:
        request.problem = "both a BSNLijst and a MutatieDatum"
    elif request.bsns is not None and (not request.bsns or any(not b for b in request.bsns)):
        request.problem = "BSNLijst without BSNs, or an empty BSN"
    return request


def select(
    request: BulkRequest,
    *,
    is_subscribed: Callable[[str], bool],
    subscribed: Iterable[str],
    subscribed_all: bool,
    changes: dict[str, _dt.datetime],
    berichttypes: dict[str, set[str]],
) -> list[Subscription]:
    """The subscriptions the answer lists (see the module docstring)."""
    if request.bsns is not None:
        chosen = list(dict.fromkeys(request.bsns))
    elif request.mutatie_datum is not None:
        since = request.mutatie_datum
        candidates = dict.fromkeys([*sorted(subscribed), *sorted(changes)])
        chosen = [bsn for bsn in candidates if _aware(changes.get(bsn, EPOCH)) >= since]
    else:
        pool = set(subscribed) | (set(changes) if subscribed_all else set())
        chosen = sorted(bsn for bsn in pool if is_subscribed(bsn))
    result: list[Subscription] = []
    for bsn in chosen:
        active = is_subscribed(bsn)
        types = sorted(berichttypes.get(bsn, ()))
        if types:
            result.extend(Subscription(bsn, berichttype, active) for berichttype in types)
        else:
            result.append(Subscription(bsn, None, active))
    return result


def _aware(moment: _dt.datetime) -> _dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_dt.UTC)


def build_answer(
    *,
    leverancier_oin: str,
    verzoek_id: str,
    peildatum: _dt.datetime,
    subscriptions: list[Subscription] | None,
    error: tuple[str, str] | None = None,
) -> bytes:
    """The AbonnementAntwoord document (plain XML; the caller gzips it)."""
    root = etree.Element(q(ABO_NS, "AbonnementAntwoord"), nsmap={"ns0": ABO_NS})
    etree.SubElement(etree.SubElement(root, "BerichtLeverancier"), "OIN").text = leverancier_oin
    etree.SubElement(root, "VerzoekId").text = verzoek_id
    etree.SubElement(root, "PeilDatum").text = format_local(peildatum)
    if error is not None:
        fout = etree.SubElement(root, "Fout")
        etree.SubElement(fout, "Code").text = error[0]
        etree.SubElement(fout, "Omschrijving").text = error[1]
    else:
        listing = etree.SubElement(root, "Abonnementen")
        for subscription in subscriptions or []:
            item = etree.SubElement(listing, "Abonnement")
            etree.SubElement(item, "BSN").text = subscription.bsn
            if subscription.berichttype:
                etree.SubElement(item, "BerichtType").text = subscription.berichttype
            etree.SubElement(item, "Actief").text = "true" if subscription.active else "false"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def gzipped(document: bytes) -> bytes:
    return gzip.compress(document, mtime=0)
