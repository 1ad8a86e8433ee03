"""Hostile inbound XML against every parser that reads XML from outside: the safe parser itself, the
GLOBE result (plain and gzipped), the ebMS envelope (plain signal and the SOAP part of a multipart
message), the CPA and the subscription answer. Each attack gets its specific error, reads no file and
fetches nothing."""
from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bbconnect.ebms import message as ebms
from bbconnect.ebms.cpa import CpaError, parse_cpa
from bbconnect.logius import globe
from bbconnect.logius.abonnementen import parse_answer
from bbconnect.xmlsafe import DEFAULT_MAX_BYTES, InvalidXmlError, UnsafeXmlError, parse_xml

from .corpus import CPA_FILE, SECRET, XML_ATTACKS, XmlAttack, XmlContext, foreign_namespace, oversized
from .inbound import CountingServer, globe_result, inbound_message, signal_envelope, subscription_answer


@dataclass(frozen=True)
class Parser:
    id: str
    document: Callable[[], bytes]  # a good document of this parser's kind
    parse: Callable[[bytes], object]
    errors: tuple[type[Exception], ...]  # what it may raise for a bad document
    prefix: dict[bool, str]  # {unsafe: the text its message starts with}
    limit: int | None  # its size limit, if a test may build a document over it


def _ebms_text(document: bytes):
    return ebms.parse("text/xml; charset=UTF-8", document)


def _ebms_multipart(document: bytes):
    headers, body = ebms.serialize(inbound_message(), envelope=document)
    return ebms.parse(headers["Content-Type"], body)


def _envelope() -> bytes:
    return ebms.envelope_of(inbound_message())


PARSERS = [
    Parser("xmlsafe.parse_xml", globe_result, parse_xml, (UnsafeXmlError, InvalidXmlError),
           {True: "", False: ""}, DEFAULT_MAX_BYTES),
    Parser("globe.parse_result", globe_result, globe.parse_result, (UnsafeXmlError, InvalidXmlError),
           {True: "", False: ""}, globe.MAX_RESULT_BYTES),
    Parser("globe.parse_result-gzipped", globe_result, lambda d: globe.parse_result(gzip.compress(d)),
           (UnsafeXmlError, InvalidXmlError), {True: "", False: ""}, globe.MAX_RESULT_BYTES),
    Parser("ebms.parse-signal", lambda: signal_envelope()[1], _ebms_text, (ebms.EbmsParseError,),
           {True: "SOAP envelope refused: ", False: "SOAP envelope refused: "}, DEFAULT_MAX_BYTES),
    Parser("ebms.parse-multipart", _envelope, _ebms_multipart, (ebms.EbmsParseError,),
           {True: "SOAP envelope refused: ", False: "SOAP envelope refused: "}, DEFAULT_MAX_BYTES),
    Parser("cpa.parse_cpa", CPA_FILE.read_bytes, parse_cpa, (CpaError,),
           {True: "CPA refused: ", False: "CPA is not well-formed XML: "}, DEFAULT_MAX_BYTES),
    Parser("abonnementen.parse_answer", subscription_answer, parse_answer, (UnsafeXmlError, InvalidXmlError),
           {True: "", False: ""}, None),
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.id)
def test_given_a_good_document_then_each_parser_reads_it(parser):
    # (the attacks below start from this document: it must be good to begin with)
    parser.parse(parser.document())


@pytest.mark.parametrize("attack", XML_ATTACKS, ids=lambda attack: attack.id)
@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.id)
def test_given_a_hostile_document_when_parsed_then_it_gets_a_specific_error_and_reads_or_fetches_nothing(
        parser: Parser, attack: XmlAttack, context: XmlContext, server: CountingServer):
    # Given a good document of the parser's kind, turned hostile
    document = attack.attack(parser.document(), context)
    hits_before = len(server.hits)
    # When it is parsed, Then it is refused with the parser's documented error
    with pytest.raises(parser.errors) as caught:
        parser.parse(document)
    message = str(caught.value)
    # And the message says what is wrong (refused for safety, or not well-formed)
    assert message.startswith(parser.prefix[attack.unsafe]), message
    assert attack.fragment in message, message
    if parser.errors[0] is UnsafeXmlError:
        assert isinstance(caught.value, UnsafeXmlError if attack.unsafe else InvalidXmlError)
    # And no file was read into it, and no server was asked for anything
    assert SECRET not in message and "LEAKED" not in message
    assert len(server.hits) == hits_before


@pytest.mark.parametrize("parser", [parser for parser in PARSERS if parser.limit], ids=lambda parser: parser.id)
def test_given_a_document_over_the_parsers_limit_then_it_is_refused_before_parsing(parser, context):
    document = oversized(parser.limit)(parser.document(), context)
    with pytest.raises(parser.errors) as caught:
        parser.parse(document)
    expected = "expands beyond" if parser.id.endswith("gzipped") else "exceeds the limit of"
    assert f"{expected} {parser.limit} bytes" in str(caught.value)


@pytest.mark.parametrize("parser,fragment", [
    (PARSERS[3], "expected a SOAP 1.1 Envelope"),
    (PARSERS[4], "expected a SOAP 1.1 Envelope"),
    (PARSERS[5], "expected a CPP/A 2.0 CollaborationProtocolAgreement"),
], ids=lambda value: getattr(value, "id", value))
def test_given_a_document_in_a_foreign_namespace_then_it_is_refused_naming_the_element(parser, fragment, context):
    with pytest.raises(parser.errors) as caught:
        parser.parse(foreign_namespace(parser.document(), context))
    assert fragment in str(caught.value) and "urn:evil" in str(caught.value)


def test_given_an_ebms_header_in_another_namespace_then_the_message_is_refused_for_lacking_its_header():
    envelope = _envelope().replace(b"http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd",
                                   b"http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/")
    with pytest.raises(ebms.EbmsParseError, match="SOAP Header lacks eb:MessageHeader"):
        _ebms_text(envelope)


def test_given_a_soap_12_envelope_then_it_is_refused_as_not_soap_11():
    envelope = _envelope().replace(b"http://schemas.xmlsoap.org/soap/envelope/", b"http://www.w3.org/2003/05/soap-envelope")
    with pytest.raises(ebms.EbmsParseError, match="expected a SOAP 1.1 Envelope"):
        _ebms_text(envelope)


def test_given_a_globe_result_with_another_root_element_then_it_is_refused_naming_it():
    document = globe_result().replace(b"BerichtVerwerkResponse", b"BerichtVerwerkRequest")
    with pytest.raises(globe.InvalidResultError, match="expected a BerichtVerwerkResponse, got root element 'BerichtVerwerkRequest'"):
        globe.parse_result(document)


def test_given_a_globe_result_in_a_foreign_namespace_then_it_is_read_by_local_names_as_documented():
    # parse_result is lenient about namespaces on purpose (live results vary): the BatchID still has to be
    # a GUID of one of our batches before anything is done with it (see test_inbound).
    result = globe.parse_result(foreign_namespace(globe_result("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001"), None))
    assert result.batch_id == "6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001"


def test_given_a_processing_instruction_inside_a_value_then_the_value_is_not_silently_cut():
    # Without the refusal, <BatchID>abc<?pi?>def</BatchID> would read as "abc" (element.text stops at the PI)
    document = globe_result("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001").replace(b"6f1c6c8e-", b"6f1c6c8e-<?pi x?>", 1)
    with pytest.raises(UnsafeXmlError, match=r"processing instruction \(<\?pi\?>\)"):
        globe.parse_result(document)


def test_all_inbound_xml_goes_through_xmlsafe():
    """No module of the domain package parses XML with lxml directly: only bbconnect.xmlsafe does."""
    import re
    from pathlib import Path

    import bbconnect

    package = Path(bbconnect.__file__).parent
    direct = re.compile(r"etree\.(fromstring|XML|parse|iterparse|XMLParser|XMLPullParser|HTML)\(|\bxml\.(dom|sax|etree)\b")
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if path.name != "xmlsafe.py" and direct.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
    source = (package / "xmlsafe.py").read_text(encoding="utf-8")
    assert "resolve_entities=False" in source and "no_network=True" in source and "huge_tree=False" in source
    assert "load_dtd=False" in source
