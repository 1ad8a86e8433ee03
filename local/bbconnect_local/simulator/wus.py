"""GLOBE's BerichtenboxValidatieService (`ValidateAbonnementen`, Digikoppeling WUS 2W-be, SOAP 1.1).

Checks, in this order, answering a SOAP Fault (HTTP 500) with the Digikoppeling WUS codes:
0003 wrong SOAPAction; 0001 not a SOAP 1.1 envelope with one Body child (0009 when not UTF-8);
0005/0006/0007 WS-Addressing To/Action/MessageID missing or wrong (Action must equal the SOAPAction);
0002 no OIN in the client certificate, or a berichtleverancierCode the certificate may not use;
0004 not valid against the WSDL's schemas. An `ApplicationFault` (per the WSDL) for 0 or more than
250 BSNs. Otherwise one `Abonnement` per `Klant` with `isBerichtSturen`, and `wsa:RelatesTo`.

Injected faults (the simulator's fault injection) strike after those checks: `wus_application_fault`
answers an `ApplicationFault`, `wus_dependent_fault` a `DependentServiceFault` (both typed faults of
the WSDL, HTTP 500). `rate_limited_response()` is what a caller over the rate limit gets: a detail-less
`s:Server` fault 0051 (service unavailable), HTTP 500, with `Retry-After: 1`.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from bbconnect_local.mtls_server import HttpRequest, HttpResponse
from bbconnect_local.simulator._xml import (
    SOAP_NS,
    WSA_NS,
    WUS_NS,
    WUS_SHARED_NS,
    WUS_TYPES_NS,
    child,
    element_children,
    load_schema,
    parse_xml,
    q,
    text_of,
)
from bbconnect_local.simulator.mime import parse_content_type

SOAP_ACTION = (
    "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01/"
    "IBerichtenboxValidatieService/ValidateAbonnementen"
)
RESPONSE_ACTION = SOAP_ACTION + "Response"
APPLICATION_FAULT_ACTION = SOAP_ACTION + "ApplicationFaultFault"
DEPENDENT_FAULT_ACTION = SOAP_ACTION + "DependentServiceFaultFault"
WSA_FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
WSA_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
MAX_KLANTEN = 250

DK_FAULTS = {
    "0001": "Invalide soap envelope",
    "0002": "Niet geautoriseerd",
    "0003": "Invalide soapaction",
    "0004": "Niet conform xsd",
    "0005": 'WS-Addressing header "to" ontbreekt',
    "0006": 'WS-Addressing header "action" ontbreekt',
    "0007": 'WS-Addressing header "messageID" ontbreekt',
    "0009": "Niet volgens UTF",
    "0051": "Service niet beschikbaar",
}


class WusFault(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code} {DK_FAULTS[code]}" + (f": {detail}" if detail else ""))
        self.code = code
        self.detail = detail


class ApplicationFault(Exception):
    pass


class DependentServiceFault(Exception):
    pass


@dataclass
class WusCall:
    """What one call asked (BSNs masked by the caller before anything is logged)."""

    client_oin: str | None
    leverancier_code: str | None
    berichttype: str | None
    bsns: list[str]


def find_wus_dir(logius_dir: Path | None) -> Path | None:
    if logius_dir is None:
        return None
    directory = logius_dir / "BerichtenboxValidatieService"
    return directory if (directory / "xsd0.xsd").is_file() else None


def load_wus_schema(wus_dir: Path | None) -> etree.XMLSchema | None:
    if wus_dir is None:
        return None
    return load_schema(wus_dir / "xsd0.xsd", resolver_dir=wus_dir)


def handle_wus(
    request: HttpRequest,
    *,
    schema: etree.XMLSchema | None,
    is_subscribed: Callable[[str], bool],
    may_send_for: Callable[[str, str], bool],
    on_call: Callable[[WusCall], None] | None = None,
    inject_fault: str | None = None,
    on_injected: Callable[[str], None] | None = None,
) -> HttpResponse:
    """Answer one ValidateAbonnementen call; `inject_fault` (a WUS fault kind) fails a valid call."""
    message_id: str | None = None
    try:
        soap_action = (request.headers.get("SOAPAction") or "").strip()
        if len(soap_action) >= 2 and soap_action[0] == soap_action[-1] == '"':
            soap_action = soap_action[1:-1]
        if soap_action != SOAP_ACTION:
            raise WusFault("0003", "SOAPAction must be the ValidateAbonnementen action")
        content_type, params = parse_content_type(request.headers.get("Content-Type") or "")
        if content_type != "text/xml":
            raise WusFault("0001", "SOAP 1.1 requires Content-Type text/xml")
        if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise WusFault("0009")
        try:
            envelope = parse_xml(request.body)
        except (etree.XMLSyntaxError, ValueError):
            raise WusFault("0001", "not well-formed XML") from None
        docinfo_encoding = (envelope.getroottree().docinfo.encoding or "UTF-8").upper()
        if docinfo_encoding not in ("UTF-8", "UTF8"):
            raise WusFault("0009")
        if envelope.tag != q(SOAP_NS, "Envelope"):
            raise WusFault("0001", "root must be a SOAP 1.1 Envelope")
        header = child(envelope, SOAP_NS, "Header")
        body = child(envelope, SOAP_NS, "Body")
        operations = element_children(body) if body is not None else []
        if body is None or len(operations) != 1:
            raise WusFault("0001", "the Body must hold exactly one element")
        message_id = text_of(child(header, WSA_NS, "MessageID")) or None
        if not text_of(child(header, WSA_NS, "To")):
            raise WusFault("0005")
        if text_of(child(header, WSA_NS, "Action")) != SOAP_ACTION:
            raise WusFault("0006", "wsa:Action missing or not equal to the SOAPAction")
        if not message_id:
            raise WusFault("0007")
        if request.client_oin is None:
            raise WusFault("0002", "the client certificate carries no OIN")

        operation = operations[0]
        if schema is not None:
            if not schema.validate(operation):
                raise WusFault("0004", str(schema.error_log.last_error))
        else:
            _structural_check(operation)

        aanvraag = child(operation, WUS_NS, "validateAbonnementenAanvraag")
        leverancier = text_of(child(aanvraag, WUS_TYPES_NS, "berichtleverancierCode"))
        berichttype = text_of(child(aanvraag, WUS_TYPES_NS, "berichtTypeCode"))
        klanten = child(aanvraag, WUS_TYPES_NS, "klanten")
        keys = [
            text_of(child(klant, WUS_SHARED_NS, "Key")) or ""
            for klant in (klanten.findall(q(WUS_SHARED_NS, "Klant")) if klanten is not None else [])
        ]
        if not leverancier or not may_send_for(request.client_oin, leverancier):
            raise WusFault("0002", "this certificate may not ask for this berichtleverancierCode")
        if on_call is not None:
            on_call(WusCall(request.client_oin, leverancier, berichttype, keys))
        if not 1 <= len(keys) <= MAX_KLANTEN:
            raise ApplicationFault(f"Het aantal klanten moet tussen 1 en {MAX_KLANTEN} liggen (was {len(keys)})")
        if any(not key for key in keys):
            raise ApplicationFault("Klant zonder Key (BSN)")
        if inject_fault in ("wus_application_fault", "wus_dependent_fault") and on_injected is not None:
            on_injected(inject_fault)
        if inject_fault == "wus_application_fault":
            raise ApplicationFault("Verzoek kon niet worden verwerkt (gesimuleerde storing)")
        if inject_fault == "wus_dependent_fault":
            raise DependentServiceFault("Achterliggende dienst niet beschikbaar (gesimuleerde storing)")
        return _ok_response(keys, is_subscribed, message_id)
    except WusFault as fault:
        return _fault_response(
            faultcode="Client" if fault.code != "0051" else "Server",
            faultstring=str(fault),
            action=WSA_FAULT_ACTION,
            relates_to=message_id,
        )
    except ApplicationFault as fault:
        return _fault_response(
            faultcode="Client",
            faultstring=str(fault),
            action=APPLICATION_FAULT_ACTION,
            relates_to=message_id,
            detail=("ApplicationFault", str(fault)),
        )
    except DependentServiceFault as fault:
        return _fault_response(
            faultcode="Server",
            faultstring=str(fault),
            action=DEPENDENT_FAULT_ACTION,
            relates_to=message_id,
            detail=("DependentServiceFault", str(fault)),
        )


def rate_limited_response() -> HttpResponse:
    """Too many calls from this client in the last second: a retryable Server fault (0051)."""
    response = _fault_response(
        faultcode="Server",
        faultstring="0051 " + DK_FAULTS["0051"] + ": te veel verzoeken per seconde, probeer het later opnieuw",
        action=WSA_FAULT_ACTION,
        relates_to=None,
    )
    response.headers["Retry-After"] = "1"
    return response


def _structural_check(operation: etree._Element) -> None:
    """The XSD's shape for ValidateAbonnementen, used when the schemas are not available."""
    if operation.tag != q(WUS_NS, "ValidateAbonnementen"):
        raise WusFault("0004", "Body element must be ValidateAbonnementen")
    kids = element_children(operation)
    if len(kids) > 1 or (kids and kids[0].tag != q(WUS_NS, "validateAbonnementenAanvraag")):
        raise WusFault("0004", "ValidateAbonnementen holds one validateAbonnementenAanvraag")
    if not kids:
        return
    expected = [q(WUS_TYPES_NS, n) for n in ("berichtleverancierCode", "berichtTypeCode", "klanten")]
    if [k.tag for k in element_children(kids[0])] != expected:
        raise WusFault("0004", "validateAbonnementenAanvraag: berichtleverancierCode, berichtTypeCode, klanten")
    klanten = element_children(kids[0])[2]
    for klant in element_children(klanten):
        if klant.tag != q(WUS_SHARED_NS, "Klant"):
            raise WusFault("0004", "klanten holds Klant elements")
        tags = [k.tag for k in element_children(klant)]
        if tags not in ([], [q(WUS_SHARED_NS, "Key")], [q(WUS_SHARED_NS, "Rol")],
                        [q(WUS_SHARED_NS, "Key"), q(WUS_SHARED_NS, "Rol")]):
            raise WusFault("0004", "Klant: Key?, Rol?")
        rol = child(klant, WUS_SHARED_NS, "Rol")
        if rol is not None and (rol.text or "") != "Burger":
            raise WusFault("0004", "Klant/Rol must be Burger")


def _envelope(action: str, relates_to: str | None) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(q(SOAP_NS, "Envelope"), nsmap={"s": SOAP_NS, "a": WSA_NS})
    header = etree.SubElement(envelope, q(SOAP_NS, "Header"))
    etree.SubElement(header, q(WSA_NS, "Action")).text = action
    etree.SubElement(header, q(WSA_NS, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, q(WSA_NS, "RelatesTo")).text = relates_to
    etree.SubElement(header, q(WSA_NS, "To")).text = WSA_ANONYMOUS
    body = etree.SubElement(envelope, q(SOAP_NS, "Body"))
    return envelope, body


def _ok_response(keys: list[str], is_subscribed: Callable[[str], bool], relates_to: str) -> HttpResponse:
    envelope, body = _envelope(RESPONSE_ACTION, relates_to)
    response = etree.SubElement(body, q(WUS_NS, "ValidateAbonnementenResponse"))
    result = etree.SubElement(
        response, q(WUS_NS, "ValidateAbonnementenResult"), nsmap={"b": WUS_TYPES_NS, "c": WUS_SHARED_NS}
    )
    for key in keys:
        abonnement = etree.SubElement(result, q(WUS_TYPES_NS, "Abonnement"))
        klant = etree.SubElement(abonnement, q(WUS_TYPES_NS, "klant"))
        etree.SubElement(klant, q(WUS_SHARED_NS, "Key")).text = key
        etree.SubElement(klant, q(WUS_SHARED_NS, "Rol")).text = "Burger"
        etree.SubElement(abonnement, q(WUS_TYPES_NS, "isBerichtSturen")).text = (
            "true" if is_subscribed(key) else "false"
        )
    return HttpResponse(
        200,
        {"Content-Type": "text/xml; charset=utf-8"},
        etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
    )


def security_fault(message: str) -> HttpResponse:
    """The answer to a 2W-be-S call whose signature does not hold (Digikoppeling fault 0002)."""
    return _fault_response(faultcode="Client", faultstring=f"{WusFault('0002')}: {message}", action=WSA_FAULT_ACTION,
                           relates_to=None)


def _fault_response(
    *,
    faultcode: str,
    faultstring: str,
    action: str,
    relates_to: str | None,
    detail: tuple[str, str] | None = None,  # (ApplicationFault | DependentServiceFault, message)
) -> HttpResponse:
    envelope, body = _envelope(action, relates_to)
    fault = etree.SubElement(body, q(SOAP_NS, "Fault"))
    etree.SubElement(fault, "faultcode").text = f"s:{faultcode}"
    etree.SubElement(fault, "faultstring").text = faultstring
    if detail is not None:
        name, message = detail
        detail_element = etree.SubElement(fault, "detail")
        typed = etree.SubElement(detail_element, q(WUS_SHARED_NS, name), nsmap={None: WUS_SHARED_NS})
        etree.SubElement(typed, q(WUS_SHARED_NS, "Message")).text = message
    return HttpResponse(
        500,
        {"Content-Type": "text/xml; charset=utf-8"},
        etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
    )
