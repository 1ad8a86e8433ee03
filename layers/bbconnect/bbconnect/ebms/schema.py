"""The structure an inbound ebMS envelope must have: the SOAP 1.1 envelope schema and the OASIS
``msg-header-2_0.xsd`` (as ebms-core ships it), written out as a table.

The official schemas are not part of bbconnect (they are read from ``../shared/ebms`` by the tests),
so the Lambda cannot load them. This module states what they require of the parts an ebMS message
uses, and :func:`schema_error` checks an envelope against that; ``tests/domain/ebms/test_schema.py``
holds it to the real XSD (lxml XMLSchema) on every message the inbound tests send, valid and broken.

What it checks, as the XSD does:
- ``SOAP:Envelope`` holds an optional ``Header``, one ``Body``, then only elements of other
  namespaces; Header blocks are namespace-qualified and not in the SOAP namespace;
- every ebMS element (``eb:MessageHeader`` and the other header blocks, ``eb:Manifest``,
  ``eb:StatusRequest``/``eb:StatusResponse``) with its children in schema order, their counts, the
  content types (non-empty string, xs:dateTime, xs:boolean, xs:nonNegativeInteger, the enumerations)
  and the attributes: required ones present, qualified ones qualified (``eb:version``, not
  ``version``: the schema's attributeFormDefault is qualified), no undeclared ones where the schema
  allows none;
- ``SOAP:mustUnderstand`` is ``0`` or ``1`` and ``SOAP:actor`` is present on ``eb:SyncReply``.

``processContents="lax"`` wildcards are followed as the XSD does: an element of a namespace the
schemas declare is checked, others are not. ds:Signature and ds:Reference are checked only for
their name (the signature verifier reads them).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from bbconnect.namespaces import DS_NS, EB_NS, SOAP_NS, XLINK_NS, XML_NS

__all__ = ["SchemaProblem", "schema_error"]

_PREFIXES: Final = {SOAP_NS: "SOAP", EB_NS: "eb", DS_NS: "ds", XLINK_NS: "xlink", XML_NS: "xml"}

_DATETIME = re.compile(
    r"-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))?"
)
_BOOLEAN = ("true", "false", "1", "0")
_NCNAME = re.compile(r"[A-Za-z_][\w.\-]*")
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def _any_uri(text: str) -> bool:
    """xs:anyURI as a URI parser reads it (RFC 3986): a colon in the first segment must end a scheme."""
    value = text.strip()
    first = re.split(r"[/?#]", value, maxsplit=1)[0]
    if ":" in first:
        return bool(_SCHEME.fullmatch(first.split(":", 1)[0]))
    return True


@dataclass(frozen=True)
class SchemaProblem:
    """Why an envelope is not schema-valid, and where (an XPath the ErrorList can name)."""

    message: str
    location: str


# simple types: name -> check(text) -> bool (whitespace as the XSD facet says)
def _non_empty(text: str) -> bool:
    return len(text) >= 1


_TYPES: Final = {
    "string": lambda text: True,
    "non-empty": _non_empty,
    "dateTime": lambda text: bool(_DATETIME.fullmatch(text.strip())),
    "boolean": lambda text: text.strip() in _BOOLEAN,
    "nonNegativeInteger": lambda text: text.strip().isdigit(),
    "anyURI": lambda text: _any_uri(text),
    "ID": lambda text: bool(_NCNAME.fullmatch(text.strip())),
    "language": lambda text: bool(_LANGUAGE.fullmatch(text.strip())),
    "mustUnderstand": lambda text: text in ("0", "1"),  # pattern 0|1: no whitespace either
    "severity": lambda text: text.strip() in ("Warning", "Error"),
    "messageStatus": lambda text: text.strip() in ("UnAuthorized", "NotRecognized", "Received", "Processed", "Forwarded"),
    "status": lambda text: text.strip() in ("Reset", "Continue"),
    "simple": lambda text: text.strip() == "simple",
}


@dataclass(frozen=True)
class _Attr:
    name: str  # Clark notation for qualified attributes
    type: str
    required: bool = False


@dataclass(frozen=True)
class _Element:
    """One element declaration. ``children``: the sequence as (Clark name or '##other', min, max);
    ``text``: the simple type of simple content (None: element-only content); ``any_attribute``:
    None, '##other' or '##any'."""

    children: tuple[tuple[str, int, int | None], ...] = ()
    text: str | None = None
    attrs: tuple[_Attr, ...] = ()
    any_attribute: str | None = None


def _eb(name: str) -> str:
    return f"{{{EB_NS}}}{name}"


_ID = _Attr(_eb("id"), "ID")
_VERSION = _Attr(_eb("version"), "non-empty", required=True)
_MUST_UNDERSTAND = _Attr(f"{{{SOAP_NS}}}mustUnderstand", "mustUnderstand", required=True)
_ACTOR = _Attr(f"{{{SOAP_NS}}}actor", "anyURI")
_HEADER_EXTENSION = (_ID, _VERSION, _MUST_UNDERSTAND)
_BODY_EXTENSION = (_ID, _VERSION)
_OTHER = ("##other", 0, None)
_PARTY = _Element(children=((_eb("PartyId"), 1, None), (_eb("Role"), 0, 1)))

_ELEMENTS: Final[dict[str, _Element]] = {
    _eb("MessageHeader"): _Element(
        children=(
            (_eb("From"), 1, 1), (_eb("To"), 1, 1), (_eb("CPAId"), 1, 1), (_eb("ConversationId"), 1, 1),
            (_eb("Service"), 1, 1), (_eb("Action"), 1, 1), (_eb("MessageData"), 1, 1),
            (_eb("DuplicateElimination"), 0, 1), (_eb("Description"), 0, None), _OTHER,
        ),
        attrs=_HEADER_EXTENSION, any_attribute="##other",
    ),
    _eb("From"): _PARTY,
    _eb("To"): _PARTY,
    _eb("PartyId"): _Element(text="non-empty", attrs=(_Attr(_eb("type"), "non-empty"),)),
    _eb("Role"): _Element(text="non-empty"),
    _eb("CPAId"): _Element(text="non-empty"),
    _eb("ConversationId"): _Element(text="non-empty"),
    _eb("Service"): _Element(text="non-empty", attrs=(_Attr(_eb("type"), "non-empty"),)),
    _eb("Action"): _Element(text="non-empty"),
    _eb("MessageData"): _Element(children=(
        (_eb("MessageId"), 1, 1), (_eb("Timestamp"), 1, 1), (_eb("RefToMessageId"), 0, 1), (_eb("TimeToLive"), 0, 1),
    )),
    _eb("MessageId"): _Element(text="non-empty"),
    _eb("Timestamp"): _Element(text="dateTime"),
    _eb("RefToMessageId"): _Element(text="non-empty"),
    _eb("TimeToLive"): _Element(text="dateTime"),
    _eb("DuplicateElimination"): _Element(text="string"),
    _eb("Description"): _Element(text="non-empty", attrs=(_Attr(f"{{{XML_NS}}}lang", "language", required=True),)),
    _eb("SyncReply"): _Element(
        children=(_OTHER,),
        attrs=(*_HEADER_EXTENSION, _Attr(f"{{{SOAP_NS}}}actor", "anyURI", required=True)), any_attribute="##other",
    ),
    _eb("MessageOrder"): _Element(
        children=((_eb("SequenceNumber"), 1, 1), _OTHER), attrs=_HEADER_EXTENSION, any_attribute="##other",
    ),
    _eb("SequenceNumber"): _Element(text="nonNegativeInteger", attrs=(_Attr(_eb("status"), "status"),)),
    _eb("AckRequested"): _Element(
        children=(_OTHER,), attrs=(*_HEADER_EXTENSION, _ACTOR, _Attr(_eb("signed"), "boolean", required=True)),
        any_attribute="##other",
    ),
    _eb("Acknowledgment"): _Element(
        children=((_eb("Timestamp"), 1, 1), (_eb("RefToMessageId"), 1, 1), (_eb("From"), 0, 1),
                  (f"{{{DS_NS}}}Reference", 0, None)),
        attrs=(*_HEADER_EXTENSION, _ACTOR), any_attribute="##other",
    ),
    _eb("ErrorList"): _Element(
        children=((_eb("Error"), 1, None), _OTHER),
        attrs=(*_HEADER_EXTENSION, _Attr(_eb("highestSeverity"), "severity", required=True)), any_attribute="##other",
    ),
    _eb("Error"): _Element(
        children=((_eb("Description"), 0, 1), _OTHER),
        attrs=(_ID, _Attr(_eb("codeContext"), "anyURI"), _Attr(_eb("errorCode"), "non-empty", required=True),
               _Attr(_eb("severity"), "severity", required=True), _Attr(_eb("location"), "non-empty")),
        any_attribute="##other",
    ),
    _eb("Manifest"): _Element(
        children=((_eb("Reference"), 1, None), _OTHER), attrs=_BODY_EXTENSION, any_attribute="##other",
    ),
    _eb("Reference"): _Element(
        children=((_eb("Schema"), 0, None), (_eb("Description"), 0, None), _OTHER),
        attrs=(_ID, _Attr(f"{{{XLINK_NS}}}type", "simple"), _Attr(f"{{{XLINK_NS}}}href", "anyURI", required=True),
               _Attr(f"{{{XLINK_NS}}}role", "anyURI")),
        any_attribute="##other",
    ),
    _eb("Schema"): _Element(attrs=(_Attr(_eb("location"), "anyURI", required=True), _Attr(_eb("version"), "non-empty"))),
    _eb("StatusRequest"): _Element(
        children=((_eb("RefToMessageId"), 1, 1), _OTHER), attrs=_BODY_EXTENSION, any_attribute="##other",
    ),
    _eb("StatusResponse"): _Element(
        children=((_eb("RefToMessageId"), 1, 1), (_eb("Timestamp"), 0, 1), _OTHER),
        attrs=(*_BODY_EXTENSION, _Attr(_eb("messageStatus"), "messageStatus", required=True)), any_attribute="##other",
    ),
}
# Declared only inside another element's content model (eb:From, eb:To): a lax wildcard does not know them.
_LOCAL_ONLY: Final = {_eb("Role")}
# Elements of the signature namespace: checked for their name only (see the module docstring).
_OPAQUE: Final = {f"{{{DS_NS}}}Signature", f"{{{DS_NS}}}Reference"}
# Global attributes the schemas declare (a lax wildcard checks them when they appear anywhere).
_GLOBAL_ATTRIBUTES: Final = {
    f"{{{SOAP_NS}}}mustUnderstand": "mustUnderstand",
    f"{{{SOAP_NS}}}actor": "anyURI",
    _eb("id"): "ID",
    _eb("version"): "non-empty",
}


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    prefix = _PREFIXES.get(qname.namespace or "")
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _path(element: etree._Element) -> str:
    steps = []
    node: etree._Element | None = element
    while node is not None:
        parent = node.getparent()
        step = _name(node)
        if parent is not None:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == node.tag]
            if len(same) > 1:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        node = parent
    return "/" + "/".join(reversed(steps))


def _attribute_name(name: str) -> str:
    qname = etree.QName(name)
    prefix = _PREFIXES.get(qname.namespace or "")
    return f"@{prefix}:{qname.localname}" if prefix else f"@{qname.localname}"


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _has_text(element: etree._Element) -> bool:
    if (element.text or "").strip():
        return True
    return any((child.tail or "").strip() for child in element)


def _tag(element: etree._Element) -> str:
    """The element's tag as Clark notation text (`{namespace}local`)."""
    return etree.QName(element).text


def _is_other(tag: str) -> bool:
    namespace = etree.QName(tag).namespace
    return bool(namespace) and namespace != EB_NS


def _check_attributes(element: etree._Element, declaration: _Element) -> SchemaProblem | None:
    declared = {a.name: a for a in declaration.attrs}
    for attribute in declaration.attrs:
        if attribute.required and element.get(attribute.name) is None:
            local = etree.QName(attribute.name).localname
            hint = " (it is written unqualified)" if element.get(local) is not None else ""
            return SchemaProblem(f"{_name(element)} lacks the required attribute {_attribute_name(attribute.name)}{hint}",
                                 _path(element))
    for name, value in element.attrib.items():
        declared_attribute = declared.get(name)
        if declared_attribute is None:
            namespace = etree.QName(name).namespace
            allowed = declaration.any_attribute == "##any" or (
                declaration.any_attribute == "##other" and namespace and namespace != EB_NS
            )
            if not allowed:
                return SchemaProblem(f"{_name(element)} may not carry the attribute {_attribute_name(name)}",
                                     f"{_path(element)}/{_attribute_name(name)}")
            type_name = _GLOBAL_ATTRIBUTES.get(name)
            if type_name is None:
                continue
        else:
            type_name = declared_attribute.type
        if not _TYPES[type_name](value):
            return SchemaProblem(f"{_attribute_name(name)} of {_name(element)} is not a valid {type_name}: {value[:60]!r}",
                                 f"{_path(element)}/{_attribute_name(name)}")
    return None


def _check_element(element: etree._Element, *, lax: bool = True) -> SchemaProblem | None:
    """Check an element: as its parent's content model names it (``lax=False``), or as a lax
    wildcard meets it, which uses only global declarations and lets undeclared elements be."""
    tag = _tag(element)
    if tag in _OPAQUE:
        return None
    declaration = _ELEMENTS.get(tag)
    if declaration is None or (lax and tag in _LOCAL_ONLY):
        return _check_global_attributes(element)
    problem = _check_attributes(element, declaration)
    if problem:
        return problem
    children = _elements(element)
    if declaration.text is not None:
        return _check_text_only(element, declaration.text, children)
    if _has_text(element):
        return SchemaProblem(f"{_name(element)} may not hold text", _path(element))
    return _check_sequence(element, declaration, children) or _first_problem(
        _check_element(child, lax=_is_other(_tag(child)) and _tag(child) not in _named_children(declaration))
        for child in children
    )


def _first_problem(problems: Iterable[SchemaProblem | None]) -> SchemaProblem | None:
    """The first problem of a lazily checked series, or None."""
    return next((problem for problem in problems if problem), None)


def _check_text_only(element: etree._Element, text_type: str, children: list[etree._Element]) -> SchemaProblem | None:
    if children:
        return SchemaProblem(f"{_name(element)} holds text only, not the element {_name(children[0])}", _path(children[0]))
    if not _TYPES[text_type](element.text or ""):
        what = {"non-empty": "a non-empty string", "dateTime": "an xs:dateTime"}.get(text_type, text_type)
        return SchemaProblem(f"{_name(element)} must be {what}: {(element.text or '')[:60]!r}", _path(element))
    return None


def _check_sequence(element: etree._Element, declaration: _Element, children: list[etree._Element]) -> SchemaProblem | None:
    """The children against the declaration's sequence: each in its place, as often as allowed."""
    index = 0
    for tag, minimum, maximum in declaration.children:
        count = 0
        while index < len(children) and (maximum is None or count < maximum):
            child = children[index]
            if (tag == "##other" and _is_other(_tag(child))) or _tag(child) == tag:
                count += 1
                index += 1
            else:
                break
        if count < minimum:
            local = _PREFIXES.get(etree.QName(tag).namespace or "", "") + ":" + etree.QName(tag).localname
            found = f", found {_name(children[index])}" if index < len(children) else ""
            return SchemaProblem(f"{_name(element)} lacks {local} (or has it out of order){found}", _path(element))
    if index < len(children):
        return SchemaProblem(f"{_name(element)} may not hold {_name(children[index])} there", _path(children[index]))
    return None


def _named_children(declaration: _Element) -> set[str]:
    return {tag for tag, _minimum, _maximum in declaration.children if tag != "##other"}


def _check_wildcard_attributes(element: etree._Element, allowed) -> SchemaProblem | None:
    """The attributes of an element whose declaration allows any attribute (``allowed(namespace)``):
    declared global ones are still type-checked (lax)."""
    for name, value in element.attrib.items():
        namespace = etree.QName(name).namespace
        if not allowed(namespace):
            return SchemaProblem(f"{_name(element)} may not carry the attribute {_attribute_name(name)}",
                                 f"{_path(element)}/{_attribute_name(name)}")
        type_name = _GLOBAL_ATTRIBUTES.get(name)
        if type_name is not None and not _TYPES[type_name](value):
            return SchemaProblem(f"{_attribute_name(name)} of {_name(element)} is not a valid {type_name}: {value[:60]!r}",
                                 f"{_path(element)}/{_attribute_name(name)}")
    return None


def _check_global_attributes(element: etree._Element) -> SchemaProblem | None:
    """An element a lax wildcard does not check: its descendants still may be declared ones, and
    declared global attributes are checked wherever they are."""
    for name, value in element.attrib.items():
        type_name = _GLOBAL_ATTRIBUTES.get(name)
        if type_name is not None and not _TYPES[type_name](value):
            return SchemaProblem(f"{_attribute_name(name)} of {_name(element)} is not a valid {type_name}: {value[:60]!r}",
                                 f"{_path(element)}/{_attribute_name(name)}")
    for child in _elements(element):
        problem = _check_element(child)
        if problem:
            return problem
    return None


def schema_error(root: etree._Element) -> SchemaProblem | None:
    """The first way the envelope ``root`` breaks the SOAP 1.1 and ebMS 2.0 schemas, or None."""
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        return SchemaProblem(f"the document element is {_name(root)}, not a SOAP 1.1 Envelope", _path(root))
    problem = _check_wildcard_attributes(root, _not_soap)
    if problem:
        return problem
    if _has_text(root):
        return SchemaProblem("SOAP:Envelope may not hold text", "/SOAP:Envelope")
    children = _elements(root)
    header = children[0] if children and children[0].tag == f"{{{SOAP_NS}}}Header" else None
    index = 0 if header is None else 1
    if index >= len(children) or children[index].tag != f"{{{SOAP_NS}}}Body":
        return SchemaProblem("SOAP:Envelope lacks its Body (after an optional Header)", "/SOAP:Envelope")
    return (
        _first_problem(_check_after_body(extra) for extra in children[index + 1:])
        or (_check_header(header) if header is not None else None)
        or _check_body(children[index])
    )


def _not_soap(namespace: str | None) -> bool:
    return bool(namespace) and namespace != SOAP_NS


def _check_after_body(extra: etree._Element) -> SchemaProblem | None:
    if not _is_other(_tag(extra)) or etree.QName(extra).namespace == SOAP_NS:
        return SchemaProblem(f"SOAP:Envelope may not hold {_name(extra)} after the Body", _path(extra))
    return _check_element(extra)


def _check_header(header: etree._Element) -> SchemaProblem | None:
    problem = _check_wildcard_attributes(header, _not_soap)
    if problem:
        return problem
    if _has_text(header):
        return SchemaProblem("SOAP:Header may not hold text", _path(header))
    return _first_problem(_check_header_block(block) for block in _elements(header))


def _check_header_block(block: etree._Element) -> SchemaProblem | None:
    namespace = etree.QName(block).namespace
    if not namespace or namespace == SOAP_NS:
        return SchemaProblem(f"{_name(block)} is not a namespace-qualified header block", _path(block))
    return _check_element(block)


def _check_body(body: etree._Element) -> SchemaProblem | None:
    if _has_text(body):
        return SchemaProblem("SOAP:Body may not hold text", _path(body))
    return _check_wildcard_attributes(body, lambda namespace: True) or _first_problem(
        _check_element(child) for child in _elements(body)
    )

