"""bbconnect.logius.wus: ValidateAbonnementen, checked against the WSDL's own schemas."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from bbconnect.logius import wus
from bbconnect.logius.wus import (
    RESPONSE_ACTION,
    SOAP_ACTION,
    WusFault,
    WusParseError,
    build_fault,
    build_request,
    build_response,
    parse_request,
    parse_response,
)

OIN = "00000001234567890000"
ENDPOINT = "https://berichtenbox.example/BerichtenboxValidatieService"
S = "{http://schemas.xmlsoap.org/soap/envelope/}"
A = "{http://www.w3.org/2005/08/addressing}"
UNREACHABLE = re.compile(r"^http://rdw64825\.ot\.tld:9002/BerichtenboxValidatieService\?xsd=(xsd[0-3])$")


def valid_bsns(count: int) -> list[str]:
    """Distinct numbers that pass the eleven-test."""
    found: list[str] = []
    prefix = 10_000_000
    while len(found) < count:
        digits = [int(c) for c in str(prefix)]
        check = sum(w * d for w, d in zip(range(9, 1, -1), digits, strict=True)) % 11
        if check < 10:
            found.append(f"{prefix}{check}")
        prefix += 1
    return found


class LocalSchemas(etree.Resolver):
    """Maps the WSDL's unreachable ``?xsd=xsdN`` locations to the files beside it."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.mapped: list[str] = []

    def resolve(self, system_url, public_id, context):
        match = UNREACHABLE.match(system_url or "")
        if match:
            self.mapped.append(match.group(1))
            return self.resolve_filename(str(self.folder / f"{match.group(1)}.xsd"), context)
        return None


@pytest.fixture(scope="module")
def service_dir(shared_dir: Path) -> Path:
    return shared_dir / "logius/BerichtenboxValidatieService"


@pytest.fixture(scope="module")
def wsdl_schema(service_dir: Path) -> etree.XMLSchema:
    """The schema embedded in the WSDL's wsdl:types, imports resolved locally."""
    resolver = LocalSchemas(service_dir)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(resolver)
    wsdl = etree.parse(str(service_dir / "BerichtenboxValidatieService.wsdl"), parser)
    embedded = wsdl.find(
        "{http://schemas.xmlsoap.org/wsdl/}types/{http://www.w3.org/2001/XMLSchema}schema"
    )
    text = etree.tostring(embedded)
    schema_doc = etree.fromstring(text, parser, base_url=str(service_dir / "embedded.xsd"))
    schema = etree.XMLSchema(etree.ElementTree(schema_doc))
    assert "xsd2" in resolver.mapped and "xsd3" in resolver.mapped  # the unreachable imports were used
    return schema


@pytest.fixture(scope="module")
def envelope_schema(shared_dir: Path, service_dir: Path) -> etree.XMLSchema:
    """SOAP 1.1 envelope (shared/ebms/envelope.xsd) plus the service's schemas: Body content is
    validated through the envelope's lax wildcard."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(LocalSchemas(service_dir))
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="http://schemas.xmlsoap.org/soap/envelope/"
                 schemaLocation="{(shared_dir / 'ebms/envelope.xsd').as_uri()}"/>
      <xs:import namespace="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01"
                 schemaLocation="{(service_dir / 'xsd0.xsd').as_uri()}"/>
      <xs:import namespace="http://schemas.rdw.nl/GEB/Shared/Types/2009/01"
                 schemaLocation="{(service_dir / 'xsd3.xsd').as_uri()}"/>
    </xs:schema>""".encode()
    return etree.XMLSchema(etree.fromstring(wrapper, parser, base_url=str(service_dir / "wrapper.xsd")))


def body_child(data: bytes) -> etree._Element:
    return etree.fromstring(data).find(f"{S}Body")[0]


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    if not schema.validate(etree.ElementTree(element)):
        raise AssertionError(f"schema-invalid: {schema.error_log}")


def request(bsns: list[str] | None = None, **kwargs) -> bytes:
    return build_request(
        bsns if bsns is not None else ["999990019"],
        kwargs.pop("sender_oin", OIN),
        kwargs.pop("berichttype", "AANSLAG"),
        to=kwargs.pop("to", ENDPOINT),
        message_id=kwargs.pop("message_id", "urn:uuid:6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001"),
    )


# --------------------------------------------------------------------------------------------------
# Request
# --------------------------------------------------------------------------------------------------


def test_request_body_validates_against_the_wsdl_schema(wsdl_schema, envelope_schema) -> None:
    # Given three BSNs
    data = request(valid_bsns(3))
    # When the request is built, Then the Body's operation element validates against the WSDL types
    assert_valid(wsdl_schema, body_child(data))
    # And the whole envelope validates as SOAP 1.1 with that content
    assert_valid(envelope_schema, etree.fromstring(data))


def test_a_broken_request_is_caught_by_the_same_schemas(wsdl_schema, envelope_schema) -> None:
    # Given a request whose Klant has its Rol before its Key (schema order broken)
    envelope = etree.fromstring(request())
    operation = envelope.find(f"{S}Body")[0]
    klant = operation.find(".//{http://schemas.rdw.nl/GEB/Shared/Types/2009/01}Klant")
    klant.insert(0, klant[1])
    # When validated, Then both schemas refuse it (so the positive tests are meaningful)
    assert not wsdl_schema.validate(etree.ElementTree(operation))
    assert not envelope_schema.validate(envelope)


def test_request_carries_ws_addressing_headers_and_the_fields() -> None:
    # Given a request
    data = request(["999990019"], message_id="urn:uuid:abc")
    root = etree.fromstring(data)
    header = root.find(f"{S}Header")
    # Then To, Action (= SOAPAction) and MessageID are present, without mustUnderstand
    assert [etree.QName(h).localname for h in header] == ["To", "Action", "MessageID"]
    assert header.findtext(f"{A}To") == ENDPOINT
    assert header.findtext(f"{A}Action") == SOAP_ACTION
    assert header.findtext(f"{A}MessageID") == "urn:uuid:abc"
    assert b"mustUnderstand" not in data
    # And the sender, berichttype and the klant are in the body
    assert SOAP_ACTION == (
        "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01/"
        "IBerichtenboxValidatieService/ValidateAbonnementen"
    )
    parsed = parse_request(data)
    assert parsed == (OIN, "AANSLAG", ["999990019"], "urn:uuid:abc")
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_soap_action_matches_the_wsdl(service_dir: Path) -> None:
    wsdl = etree.parse(str(service_dir / "BerichtenboxValidatieService.wsdl"))
    actions = wsdl.xpath(
        "//soap:operation/@soapAction", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert actions == [SOAP_ACTION]
    outputs = wsdl.xpath(
        "//wsdl:portType/wsdl:operation/wsdl:output/@wsaw:Action",
        namespaces={
            "wsdl": "http://schemas.xmlsoap.org/wsdl/",
            "wsaw": "http://www.w3.org/2006/05/addressing/wsdl",
        },
    )
    assert outputs == [RESPONSE_ACTION]


def test_250_bsns_are_accepted_and_251_refused(wsdl_schema) -> None:
    # Given 250 distinct BSNs, When built, Then valid with 250 Klant elements
    data = request(valid_bsns(250))
    assert_valid(wsdl_schema, body_child(data))
    assert len(parse_request(data).bsns) == 250
    # Given 251, When built, Then refused
    with pytest.raises(ValueError, match="1 to 250 BSNs, got 251"):
        request(valid_bsns(251))


def test_no_bsns_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 250 BSNs, got 0"):
        request([])


def test_duplicates_are_asked_once() -> None:
    bsns = valid_bsns(2)
    assert parse_request(request([bsns[0], bsns[1], bsns[0]])).bsns == bsns


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bsns": ["123456789"]}, "BSN number 1 fails the eleven-test"),
        ({"bsns": ["12345"]}, "BSN number 1 must be exactly 9 digits"),
        ({"sender_oin": "123"}, "sender OIN must be 20 characters"),
        ({"berichttype": ""}, "berichttype must be a non-empty string"),
        ({"berichttype": "NEGENTEKS"}, "berichttype must be 1–8 characters"),
        ({"to": ""}, r"to \(wsa:To\) must be a non-empty string"),
        ({"message_id": " "}, r"message_id \(wsa:MessageID\) must be a non-empty string"),
    ],
)
def test_invalid_request_values_are_refused_without_echoing_bsns(kwargs: dict, message: str) -> None:
    bsns = kwargs.pop("bsns", None)
    with pytest.raises(ValueError, match=message) as caught:
        request(bsns, **kwargs)
    assert "123456789" not in str(caught.value)


def test_parse_request_refuses_a_wrong_action_and_a_missing_message_id() -> None:
    data = request()
    with pytest.raises(WusParseError, match="wsa:Action"):
        parse_request(data.replace(SOAP_ACTION.encode(), b"urn:other"))
    without_id = re.sub(rb"<a:MessageID>.*?</a:MessageID>", b"", data)
    with pytest.raises(WusParseError, match="MessageID"):
        parse_request(without_id)


# --------------------------------------------------------------------------------------------------
# Response
# --------------------------------------------------------------------------------------------------


def test_response_validates_and_parses_to_a_bsn_map(wsdl_schema, envelope_schema) -> None:
    # Given answers for two citizens
    yes, no = valid_bsns(2)
    data = build_response({yes: True, no: False}, relates_to="urn:uuid:req-1")
    # Then the response validates against the WSDL schema and as a SOAP envelope
    assert_valid(wsdl_schema, body_child(data))
    assert_valid(envelope_schema, etree.fromstring(data))
    header = etree.fromstring(data).find(f"{S}Header")
    assert header.findtext(f"{A}RelatesTo") == "urn:uuid:req-1"
    assert header.findtext(f"{A}Action") == RESPONSE_ACTION
    # When parsed, Then each BSN maps to isBerichtSturen
    assert parse_response(data, relates_to="urn:uuid:req-1") == {yes: True, no: False}


def test_response_for_another_request_is_refused() -> None:
    data = build_response({"999990019": True}, relates_to="urn:uuid:other")
    with pytest.raises(WusParseError, match="RelatesTo"):
        parse_response(data, relates_to="urn:uuid:mine")


def test_wcf_style_response_with_other_prefixes_and_nil_entries_parses(wsdl_schema) -> None:
    # Given a response as WCF writes it: default namespaces, xsi:nil, "1"/"0" booleans, no WS-A headers
    data = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<ValidateAbonnementenResponse xmlns="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01">
 <ValidateAbonnementenResult xmlns:b="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/Types/2009/01"
   xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <b:Abonnement><b:klant xmlns:c="http://schemas.rdw.nl/GEB/Shared/Types/2009/01"><c:Key>999990019</c:Key><c:Rol>Burger</c:Rol></b:klant><b:isBerichtSturen>1</b:isBerichtSturen></b:Abonnement>
  <b:Abonnement i:nil="true"/>
  <b:Abonnement><b:klant xmlns:c="http://schemas.rdw.nl/GEB/Shared/Types/2009/01"><c:Key>100000009</c:Key></b:klant><b:isBerichtSturen>false</b:isBerichtSturen></b:Abonnement>
 </ValidateAbonnementenResult>
</ValidateAbonnementenResponse></s:Body></s:Envelope>"""
    # Then the body is schema-valid (so the sample is realistic) and parses
    assert_valid(wsdl_schema, body_child(data))
    assert parse_response(data) == {"999990019": True, "100000009": False}


def test_nil_result_gives_an_empty_map() -> None:
    data = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<ValidateAbonnementenResponse xmlns="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01">
<ValidateAbonnementenResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>
</ValidateAbonnementenResponse></s:Body></s:Envelope>"""
    assert parse_response(data) == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<Envelope/>", "expected a SOAP 1.1 Envelope"),
        (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>', "no Body"),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x/></s:Body></s:Envelope>',
            "expected ValidateAbonnementenResponse",
        ),
    ],
)
def test_unexpected_responses_raise_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(WusParseError, match=message):
        parse_response(data)


def test_response_without_flag_is_refused() -> None:
    data = build_response({"999990019": True}, relates_to="r").replace(b"<t:isBerichtSturen>true</t:isBerichtSturen>", b"")
    with pytest.raises(WusParseError, match="isBerichtSturen"):
        parse_response(data)


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("DependentServiceFault", True), ("ApplicationFault", False), ("Server", True), ("Client", False)],
)
def test_faults_raise_wus_fault_with_the_retry_flag(code: str, retryable: bool, envelope_schema) -> None:
    # Given a fault answer
    data = build_fault(code, "GLOBE is niet beschikbaar", relates_to="urn:uuid:req-1")
    assert_valid(envelope_schema, etree.fromstring(data))
    # When the answer is parsed, Then a WusFault tells whether to retry
    with pytest.raises(WusFault) as caught:
        parse_response(data)
    assert caught.value.code == code
    assert caught.value.message == "GLOBE is niet beschikbaar"
    assert caught.value.retryable is retryable


def test_typed_fault_detail_validates_against_the_shared_types(wsdl_schema) -> None:
    # Given a DependentServiceFault, Then its detail element is the one the WSDL declares
    detail = etree.fromstring(build_fault("DependentServiceFault", "down")).find(f"{S}Body/{S}Fault/detail")
    assert_valid(wsdl_schema, detail[0])


def test_wcf_fault_with_detail_message_is_read() -> None:
    # Given a fault as WCF writes it, with the detail message differing from the faultstring
    data = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode>s:Client</faultcode><faultstring xml:lang="nl-NL">The creator of this fault did not specify a Reason.</faultstring>
<detail><ApplicationFault xmlns="http://schemas.rdw.nl/GEB/Shared/Types/2009/01" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
<Message>Berichttype onbekend</Message></ApplicationFault></detail></s:Fault></s:Body></s:Envelope>"""
    with pytest.raises(WusFault) as caught:
        parse_response(data)
    assert (caught.value.code, caught.value.message, caught.value.retryable) == (
        "ApplicationFault",
        "Berichttype onbekend",
        False,
    )


def test_unknown_fault_kind_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="unknown fault code"):
        build_fault("Oops", "x")


def test_new_message_id_is_a_urn_uuid() -> None:
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", wus.new_message_id())
