"""The synchronous subscription check ``ValidateAbonnementen`` (Digikoppeling WUS, SOAP 1.1).

Contract: ``BerichtenboxValidatieService.wsdl`` with xsd0 (operation elements), xsd2 (request and
answer types) and xsd3 (``Klant``, the faults). The request body is::

    ValidateAbonnementen                         {…/BerichtenboxValidatieService/2009/01}
      validateAbonnementenAanvraag               {…/BerichtenboxValidatieService/2009/01}
        berichtleverancierCode   (sender OIN)    {…/BerichtenboxValidatieService/Types/2009/01}
        berichtTypeCode          (berichttype)   {…/BerichtenboxValidatieService/Types/2009/01}
        klanten                                  {…/BerichtenboxValidatieService/Types/2009/01}
          Klant*  Key (BSN), Rol (Burger)        {…/GEB/Shared/Types/2009/01}

SOAP 1.1, document/literal, UTF-8, with WS-Addressing 2005/08 ``To``, ``Action`` (= SOAPAction)
and ``MessageID`` headers. The headers carry no ``mustUnderstand``: the service is a WCF
BasicHttpBinding, which does not process WS-Addressing and would fault on a header it must
understand. Unsigned (Logius: the Berichtenbox WUS messages cannot be signed).

Error messages never contain a BSN.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

from lxml import etree
from stdnum.nl import bsn as stdnum_bsn

from bbconnect.namespaces import SOAP_NS, WSA_NS, XSI_NS
from bbconnect.xmlsafe import parse_xml

__all__ = [
    "ACTION_NS",
    "APPLICATION_FAULT_ACTION",
    "DEPENDENT_SERVICE_FAULT_ACTION",
    "MAX_BSNS",
    "RESPONSE_ACTION",
    "SERVICE_NS",
    "SHARED_NS",
    "SOAP_ACTION",
    "SOAP_NS",
    "TYPES_NS",
    "WSA_NS",
    "WusFault",
    "WusParseError",
    "WusRequest",
    "build_fault",
    "build_request",
    "build_response",
    "new_message_id",
    "parse_request",
    "parse_response",
]

SERVICE_NS: Final = "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01"
TYPES_NS: Final = "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/Types/2009/01"
SHARED_NS: Final = "http://schemas.rdw.nl/GEB/Shared/Types/2009/01"

ACTION_NS: Final = f"{SERVICE_NS}/IBerichtenboxValidatieService"
SOAP_ACTION: Final = f"{ACTION_NS}/ValidateAbonnementen"
RESPONSE_ACTION: Final = f"{ACTION_NS}/ValidateAbonnementenResponse"
DEPENDENT_SERVICE_FAULT_ACTION: Final = f"{ACTION_NS}/ValidateAbonnementenDependentServiceFaultFault"
APPLICATION_FAULT_ACTION: Final = f"{ACTION_NS}/ValidateAbonnementenApplicationFaultFault"

MAX_BSNS: Final = 250
KLANT_ROL: Final = "Burger"

_OIN = re.compile(r"[0-9A-Z]{20}")
_BSN = re.compile(r"[0-9]{9}")
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_NSMAP = {"s": SOAP_NS, "a": WSA_NS}
_RETRYABLE = {"DependentServiceFault": True, "ApplicationFault": False}


class WusParseError(ValueError):
    """A WUS message that is not the expected SOAP document."""


class WusFault(Exception):
    """A SOAP Fault answered by the validation service.

    ``code`` is the detail element's name (``DependentServiceFault``, ``ApplicationFault``) when
    there is one, else the local part of ``faultcode`` (``Client``, ``Server``, ...). ``retryable``
    is True for ``DependentServiceFault`` (GLOBE's backend is unavailable) and for a detail-less
    ``Server`` fault; False for ``ApplicationFault`` and ``Client`` faults.
    """

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"WusFault(code={self.code!r}, message={self.message!r}, retryable={self.retryable!r})"


class WusRequest(NamedTuple):
    """What :func:`parse_request` reads out of a request (unpacks as a 4-tuple)."""

    sender_oin: str
    berichttype: str
    bsns: list[str]
    message_id: str


def new_message_id() -> str:
    """A fresh WS-Addressing MessageID (``urn:uuid:…``)."""
    return f"urn:uuid:{uuid.uuid4()}"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _envelope(headers: Sequence[tuple[str, str]]) -> tuple[etree._Element, etree._Element]:
    env = etree.Element(_q(SOAP_NS, "Envelope"), nsmap=_NSMAP)
    header = etree.SubElement(env, _q(SOAP_NS, "Header"))
    for name, value in headers:
        etree.SubElement(header, _q(WSA_NS, name)).text = value
    body = etree.SubElement(env, _q(SOAP_NS, "Body"))
    return env, body


def _serialise(env: etree._Element) -> bytes:
    return _DECLARATION + etree.tostring(env, encoding="UTF-8")


def _local(element: etree._Element) -> str | None:
    return etree.QName(element.tag).localname if isinstance(element.tag, str) else None


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent if _local(c) == name), None)


def _is_nil(element: etree._Element) -> bool:
    return element.get(_q(XSI_NS, "nil")) in ("true", "1")


def _text(element: etree._Element | None) -> str | None:
    if element is None or _is_nil(element):
        return None
    return "".join(element.itertext()).strip()


def _check_nonblank(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if any(ch in value for ch in "\r\n\t\x00"):
        raise ValueError(f"{what} must be a single line")
    return value


def _check_bsns(bsns: Sequence[str]) -> list[str]:
    if isinstance(bsns, str):
        raise ValueError("bsns must be a sequence of BSNs, not one string")
    unique = list(dict.fromkeys(bsns))  # duplicates are asked once; order kept
    if not 1 <= len(unique) <= MAX_BSNS:
        raise ValueError(f"a ValidateAbonnementen call takes 1 to {MAX_BSNS} BSNs, got {len(unique)}")
    for position, value in enumerate(unique, start=1):
        if not isinstance(value, str) or not _BSN.fullmatch(value):
            raise ValueError(f"BSN number {position} must be exactly 9 digits")
        if value == "000000000" or not stdnum_bsn.is_valid(value):
            raise ValueError(f"BSN number {position} fails the eleven-test")
    return unique


def _parse_envelope(data: bytes) -> tuple[etree._Element, etree._Element | None, etree._Element]:
    root = parse_xml(data)
    if root.tag != _q(SOAP_NS, "Envelope"):
        raise WusParseError(f"expected a SOAP 1.1 Envelope, got {root.tag!r}")
    header = root.find(_q(SOAP_NS, "Header"))
    body = root.find(_q(SOAP_NS, "Body"))
    if body is None:
        raise WusParseError("SOAP Envelope has no Body")
    return root, header, body


def _body_child(body: etree._Element) -> etree._Element:
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise WusParseError(f"SOAP Body must hold exactly one element, found {len(children)}")
    return children[0]


def _header_value(header: etree._Element | None, name: str) -> str | None:
    if header is None:
        return None
    return _text(header.find(_q(WSA_NS, name)))


# --------------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------------


def build_request(
    bsns: Sequence[str],
    sender_oin: str,
    berichttype: str,
    *,
    to: str,
    message_id: str,
) -> bytes:
    """The SOAP request asking, per BSN, whether the citizen receives this berichttype digitally.

    1..250 distinct valid BSNs (duplicates are asked once), the sender's 20-character OIN as
    ``berichtleverancierCode`` and the berichttype (1–8) as ``berichtTypeCode``; ``to`` is the
    service URL (``wsa:To``) and ``message_id`` the ``wsa:MessageID``. POST it with header
    ``SOAPAction: "<SOAP_ACTION>"`` and ``Content-Type: text/xml; charset=utf-8``. Raises ValueError.
    """
    unique = _check_bsns(bsns)
    if not isinstance(sender_oin, str) or not _OIN.fullmatch(sender_oin):
        raise ValueError(f"sender OIN must be 20 characters of 0-9/A-Z, got {sender_oin!r}")
    _check_nonblank(berichttype, "berichttype")
    if len(berichttype) > 8:
        raise ValueError(f"berichttype must be 1–8 characters, got {len(berichttype)}")
    _check_nonblank(to, "to (wsa:To)")
    _check_nonblank(message_id, "message_id (wsa:MessageID)")

    env, body = _envelope([("To", to), ("Action", SOAP_ACTION), ("MessageID", message_id)])
    operation = etree.SubElement(
        body, _q(SERVICE_NS, "ValidateAbonnementen"), nsmap={"v": SERVICE_NS, "t": TYPES_NS, "k": SHARED_NS}
    )
    aanvraag = etree.SubElement(operation, _q(SERVICE_NS, "validateAbonnementenAanvraag"))
    etree.SubElement(aanvraag, _q(TYPES_NS, "berichtleverancierCode")).text = sender_oin
    etree.SubElement(aanvraag, _q(TYPES_NS, "berichtTypeCode")).text = berichttype
    klanten = etree.SubElement(aanvraag, _q(TYPES_NS, "klanten"))
    for value in unique:
        klant = etree.SubElement(klanten, _q(SHARED_NS, "Klant"))
        etree.SubElement(klant, _q(SHARED_NS, "Key")).text = value
        etree.SubElement(klant, _q(SHARED_NS, "Rol")).text = KLANT_ROL
    return _serialise(env)


def _raise_fault(fault: etree._Element) -> None:
    faultcode = _text(_child(fault, "faultcode")) or ""
    faultstring = _text(_child(fault, "faultstring")) or ""
    code_local = faultcode.rpartition(":")[2] or "Fault"
    detail = _child(fault, "detail")
    if detail is not None:
        for item in detail:
            name = _local(item)
            if name in _RETRYABLE:
                message = _text(_child(item, "Message")) or faultstring
                raise WusFault(name, message, _RETRYABLE[name])
    raise WusFault(code_local, faultstring, code_local == "Server")


def parse_response(data: bytes, *, relates_to: str | None = None) -> dict[str, bool]:
    """Read a ``ValidateAbonnementenResponse`` into {BSN: isBerichtSturen}.

    A SOAP Fault raises :class:`WusFault`. When ``relates_to`` is given and the answer carries a
    ``wsa:RelatesTo``, they must match. Anything else unexpected raises :class:`WusParseError`.
    """
    _, header, body = _parse_envelope(data)
    payload = _body_child(body)
    if payload.tag == _q(SOAP_NS, "Fault"):
        _raise_fault(payload)
    if relates_to is not None:
        answered = _header_value(header, "RelatesTo")
        if answered is not None and answered != relates_to:
            raise WusParseError("wsa:RelatesTo of the answer does not match the request's MessageID")
    if _local(payload) != "ValidateAbonnementenResponse":
        raise WusParseError(f"expected ValidateAbonnementenResponse, got {_local(payload)!r}")
    results: dict[str, bool] = {}
    result = _child(payload, "ValidateAbonnementenResult")
    if result is None or _is_nil(result):
        return results
    for position, abonnement in enumerate((c for c in result if _local(c) == "Abonnement"), start=1):
        if _is_nil(abonnement):
            continue
        klant = _child(abonnement, "klant")
        key = _text(_child(klant, "Key")) if klant is not None and not _is_nil(klant) else None
        if not key:
            raise WusParseError(f"Abonnement {position} has no klant/Key")
        flag = _text(_child(abonnement, "isBerichtSturen"))
        if flag in ("true", "1"):
            results[key] = True
        elif flag in ("false", "0"):
            results[key] = False
        else:
            raise WusParseError(f"Abonnement {position} has no valid isBerichtSturen ({flag!r})")
    return results


# --------------------------------------------------------------------------------------------------
# Service side (simulator, tests)
# --------------------------------------------------------------------------------------------------


def parse_request(data: bytes) -> WusRequest:
    """Read a ValidateAbonnementen request: (sender_oin, berichttype, bsns, message_id).

    Requires ``wsa:MessageID``; a ``wsa:Action`` other than :data:`SOAP_ACTION` is refused.
    Raises :class:`WusParseError`.
    """
    _, header, body = _parse_envelope(data)
    action = _header_value(header, "Action")
    if action is not None and action != SOAP_ACTION:
        raise WusParseError(f"wsa:Action {action!r} is not {SOAP_ACTION!r}")
    message_id = _header_value(header, "MessageID")
    if not message_id:
        raise WusParseError("request lacks the WS-Addressing MessageID header")
    operation = _body_child(body)
    if operation.tag != _q(SERVICE_NS, "ValidateAbonnementen"):
        raise WusParseError(f"expected ValidateAbonnementen, got {operation.tag!r}")
    aanvraag = operation.find(_q(SERVICE_NS, "validateAbonnementenAanvraag"))
    if aanvraag is None or _is_nil(aanvraag):
        raise WusParseError("request lacks validateAbonnementenAanvraag")
    sender = _text(aanvraag.find(_q(TYPES_NS, "berichtleverancierCode")))
    berichttype = _text(aanvraag.find(_q(TYPES_NS, "berichtTypeCode")))
    if not sender:
        raise WusParseError("request lacks berichtleverancierCode")
    if not berichttype:
        raise WusParseError("request lacks berichtTypeCode")
    klanten = aanvraag.find(_q(TYPES_NS, "klanten"))
    bsns: list[str] = []
    if klanten is not None:
        for klant in klanten.iterfind(_q(SHARED_NS, "Klant")):
            key = _text(klant.find(_q(SHARED_NS, "Key")))
            if key:
                bsns.append(key)
    return WusRequest(sender, berichttype, bsns, message_id)


def build_response(results: Mapping[str, bool], relates_to: str, *, message_id: str | None = None) -> bytes:
    """A ``ValidateAbonnementenResponse`` answering ``relates_to`` (the request's MessageID)."""
    _check_nonblank(relates_to, "relates_to")
    env, body = _envelope(
        [
            ("Action", RESPONSE_ACTION),
            ("MessageID", message_id or new_message_id()),
            ("RelatesTo", relates_to),
        ]
    )
    response = etree.SubElement(
        body,
        _q(SERVICE_NS, "ValidateAbonnementenResponse"),
        nsmap={"v": SERVICE_NS, "t": TYPES_NS, "k": SHARED_NS},
    )
    result = etree.SubElement(response, _q(SERVICE_NS, "ValidateAbonnementenResult"))
    for key, flag in results.items():
        abonnement = etree.SubElement(result, _q(TYPES_NS, "Abonnement"))
        klant = etree.SubElement(abonnement, _q(TYPES_NS, "klant"))
        etree.SubElement(klant, _q(SHARED_NS, "Key")).text = key
        etree.SubElement(klant, _q(SHARED_NS, "Rol")).text = KLANT_ROL
        etree.SubElement(abonnement, _q(TYPES_NS, "isBerichtSturen")).text = "true" if flag else "false"
    return _serialise(env)


def build_fault(code: str, message: str, *, relates_to: str | None = None) -> bytes:
    """A SOAP 1.1 Fault.

    ``code`` ``DependentServiceFault`` or ``ApplicationFault`` gives the WSDL's typed fault (detail
    element with ``Message``, faultcode ``s:Server`` / ``s:Client``); ``Client`` or ``Server`` gives
    a plain fault without detail.
    """
    if code not in ("DependentServiceFault", "ApplicationFault", "Client", "Server"):
        raise ValueError(f"unknown fault code {code!r}")
    headers: list[tuple[str, str]] = []
    if code == "DependentServiceFault":
        headers.append(("Action", DEPENDENT_SERVICE_FAULT_ACTION))
    elif code == "ApplicationFault":
        headers.append(("Action", APPLICATION_FAULT_ACTION))
    else:
        headers.append(("Action", f"{WSA_NS}/soap/fault"))
    if relates_to:
        headers.append(("RelatesTo", relates_to))
    env, body = _envelope(headers)
    fault = etree.SubElement(body, _q(SOAP_NS, "Fault"))
    faultcode = "s:Server" if code in ("DependentServiceFault", "Server") else "s:Client"
    etree.SubElement(fault, "faultcode").text = faultcode
    etree.SubElement(fault, "faultstring").text = message
    if code in _RETRYABLE:
        detail = etree.SubElement(fault, "detail")
        typed = etree.SubElement(detail, _q(SHARED_NS, code), nsmap={"k": SHARED_NS})
        etree.SubElement(typed, _q(SHARED_NS, "Message")).text = message
    return _serialise(env)
