"""The inbound ebMS endpoint (service/results.py) as a conformant MSH: one row per rule of ebMS 2.0 and
the CPA, each a message from Logius that breaks exactly that rule, for every CPA profile (osb-rm
with the acknowledgement in the HTTP response, osb-rm with asynchronous acknowledgements, osb-rm-s
signed). Each gets a MessageError with the spec's error code, severity Error and the location, the
way the CPA says (in the response, or as a message of its own), and nothing of it is stored.

Also: Ping gets Pong, StatusRequest a StatusResponse from the stored state, a duplicate the same
acknowledgement, a signed message a signed acknowledgement (checked by xmlsec1), and what cannot be
processed a SOAP Fault, never a crash."""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from bbconnect.ebms import message as ebms
from bbconnect.ebms.signing import sign_ebms
from bbconnect.logius.globe import BatchResult, LetterResult, build_result
from bbconnect.service.context import ReferenceSecrets
from bbconnect.service.records import GlobeRecord, InboundRecord, SignalRecord
from bbconnect.service.results import InboundRequest, receive
from bbconnect.tenants import load_tenant_config
from bbconnect_local.cpa_local import localised_cpa
from bbconnect_local.pki import TestPKI

REPO = Path(__file__).resolve().parents[2]
SENDER_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
NS = {"SOAP": ebms.SOAP_NS, "eb": ebms.EB_NS, "xlink": "http://www.w3.org/1999/xlink",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
OUR_ENDPOINT = "https://bbconnect.gemeente-lv.example/ebms"
LOGIUS_ENDPOINT = "https://ebms.logius.example/globe/ebms"
PROFILES = {"sync": "gemeente-lv.xml", "async": "gemeente-lv-async.xml", "signed": "gemeente-lv-signed.xml"}


# ------------------------------------------------------------------------------------------- setting
@dataclass
class Profile:
    name: str
    cpa_xml: bytes
    connection: object
    logius_key: bytes
    logius_cert: bytes
    our_cert: bytes

    @property
    def signed(self) -> bool:
        return self.name == "signed"

    @property
    def sync(self) -> bool:
        return self.name != "async"

    @property
    def cpa_id(self) -> str:
        return self.connection.cpa_id


@pytest.fixture(scope="module")
def identities(tmp_path_factory):
    pki = TestPKI(tmp_path_factory.mktemp("pki"), key_type="rsa")
    ours = pki.issue("gemeente-lv", oin=SENDER_OIN, server=False)
    logius = pki.issue("logius", oin=LOGIUS_OIN, client=False)
    bundle = ours.cert_path.parent / "gemeente-lv-bundle.pem"
    bundle.write_bytes(ours.cert_pem + ours.key_path.read_bytes())
    return SimpleNamespace(ours=ours, logius=logius, bundle=bundle)


@pytest.fixture(scope="module", params=list(PROFILES))
def profile(request, identities) -> Profile:
    cpa = localised_cpa((REPO / "config" / "cpa" / PROFILES[request.param]).read_bytes(),
                        endpoints={SENDER_OIN: OUR_ENDPOINT, LOGIUS_OIN: LOGIUS_ENDPOINT},
                        certificates={SENDER_OIN: identities.ours.cert_pem, LOGIUS_OIN: identities.logius.cert_pem})
    cpa_id = etree.fromstring(cpa).get("{http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd}cpaid")
    config = json.loads((REPO / "config" / "tenants" / "gemeente-lv.json").read_text())
    config["connections"]["lv-logius"].update(cpa_id=cpa_id, certificate=f"file:{identities.bundle}")
    connection = load_tenant_config(json.dumps(config).encode(), source="test").connections["lv-logius"]
    return Profile(request.param, cpa, connection, identities.logius.key_path.read_bytes(), identities.logius.cert_pem,
                   identities.ours.cert_pem)


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.objects: dict[str, bytes] = {}
        self.inbound: dict[tuple[str, str], dict] = {}
        self.signals: dict[str, dict] = {}
        self.globes: dict[str, dict] = {}
        self.jobs: list[dict] = []

    def stored(self) -> list[tuple[str, str]]:
        """Everything written except our own outbound signals (an asynchronous answer is stored to be sent)."""
        return [w for w in self.writes if w[0] not in ("signal", "signal-bytes")]


class Work:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    def put(self, key, data, content_type="application/octet-stream", **kwargs):
        self.r.writes.append(("signal-bytes" if key.startswith("signals/") else "work", key))
        self.r.objects[key] = bytes(data)

    def get(self, key):
        return self.r.objects[key]


class Batches:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    def inbound_seen(self, cpa_id, message_id):
        found = self.r.inbound.get((cpa_id, message_id))
        return None if found is None else InboundRecord.model_validate(found)

    def record_inbound(self, cpa_id, message_id, **item):
        self.r.writes.append(("inbound", message_id))
        self.r.inbound[(cpa_id, message_id)] = {**item, "received_at": datetime.now(UTC).isoformat()}
        return True

    def globe(self, globe_id):
        found = self.r.globes.get(globe_id)
        return None if found is None else GlobeRecord.model_validate({
            "globe_batch_id": globe_id, "batch_id": "b", "chunk": 0, "tenant": "gemeente-lv", "connection": "lv-logius",
            "endpoint": LOGIUS_ENDPOINT, "from_oin": SENDER_OIN, **found})

    def globe_of_message(self, message_id):
        return next((g for g, record in self.r.globes.items() if record["message_id"] == message_id), None)

    def record_result(self, globe_id, key, message_id):
        self.r.writes.append(("result", globe_id))
        return True

    def update_globe(self, globe_id, **fields):
        self.r.writes.append(("globe", globe_id))
        self.r.globes[globe_id].update(fields)

    def signal(self, message_id):
        found = self.r.signals.get(message_id)
        return None if found is None else SignalRecord.model_validate({"message_id": message_id, **found})

    def create_signal(self, message_id, **fields):
        self.r.writes.append(("signal", message_id))
        if message_id in self.r.signals:
            return False
        self.r.signals[message_id] = {"state": "created", "attempts": 0, **fields}
        return True

    def update_signal(self, message_id, **fields):
        self.r.writes.append(("signal", message_id))
        self.r.signals[message_id].update(fields)


class Configs:
    def __init__(self, profile: Profile, cpa_xml: bytes | None = None) -> None:
        self.profile, self.cpa_xml = profile, cpa_xml or profile.cpa_xml

    def connection_by_cpa(self, cpa_id):
        return ("gemeente-lv", self.profile.connection) if cpa_id == self.profile.cpa_id else None

    def cpa(self, tenant, connection):
        return self.cpa_xml

    def get(self, tenant):
        return SimpleNamespace(connections={"lv-logius": self.profile.connection})


def services_for(profile: Profile, cpa_xml: bytes | None = None):
    recorder = Recorder()
    services = SimpleNamespace(
        settings=SimpleNamespace(accepted_logius_oins=frozenset({LOGIUS_OIN})), work=Work(recorder),
        batches=Batches(recorder), configs=Configs(profile, cpa_xml), letters=SimpleNamespace(), secrets=ReferenceSecrets(),
    )
    return services, recorder


# ------------------------------------------------------------------------------------------- messages
def globe_result() -> bytes:
    now = datetime.now(UTC)
    return build_result(BatchResult(
        batch_id=str(uuid.uuid4()), leverancier_code=SENDER_OIN, total_received=1, processed_ok=1, no_active_box=0,
        technical_problem=0, berichttype_incorrect=0, publish_date_incorrect=0, created_date_incorrect=0,
        received_at=now, processed_at=now,
        letters=[LetterResult(bericht_id=str(uuid.uuid4()), berichttype="AANSLAG", code="Verwerkt", stage="NA")]))


def result_message(profile: Profile, **changes) -> ebms.EbmsMessage:
    """A good GLOBE-R-BV-Result from Logius, as the profile's CPA wants it."""
    now = datetime.now(UTC)
    message = ebms.EbmsMessage(
        cpa_id=profile.cpa_id, conversation_id=str(uuid.uuid4()), service=ebms.BERICHTENBOX_SERVICE,
        service_type=ebms.SERVICE_TYPE, action=ebms.ACTION_BV_RESULT,
        from_party=ebms.Party(LOGIUS_OIN, ebms.ROLE_LOGIUS), to_party=ebms.Party(SENDER_OIN, ebms.ROLE_SENDER),
        message_id=ebms.new_message_id("logius.test"), timestamp=now, time_to_live=now + timedelta(minutes=30),
        ack_requested=True, duplicate_elimination=True, sync_reply=profile.sync, ack_signature_requested=profile.signed,
        payloads=(ebms.Payload("result@logius.test", "application/xml", globe_result()),),
    )
    return replace(message, **changes)


Edit = Callable[[etree._Element], None]


def post(profile: Profile, services, message: ebms.EbmsMessage | None = None, *, edit: Edit | None = None,
         sign: bool | None = None, after_sign: Callable[[bytes], bytes] | None = None, cert_oin: str = LOGIUS_OIN,
         recorder: Recorder | None = None) -> dict:
    message = message or result_message(profile)
    envelope = ebms.envelope_of(message)
    if edit is not None:
        root = etree.fromstring(envelope)
        edit(root)
        envelope = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if profile.signed if sign is None else sign:
        envelope = sign_ebms(envelope, message.payloads, profile.logius_key, profile.logius_cert)
    if after_sign is not None:
        envelope = after_sign(envelope)
    headers, body = ebms.serialize(message, envelope=envelope)
    jobs = recorder.jobs if recorder is not None else []
    return receive(InboundRequest(headers=headers, body=body, client_cert_pem="pem"), services,
                   certificate_oin=lambda pem: cert_oin,
                   schedule=lambda job, delay: jobs.append(json.loads(job)), on_bulk_answer=None)


def answer_of(profile: Profile, answer: dict, recorder: Recorder) -> tuple[ebms.EbmsMessage, bytes]:
    """The signal that answers: the HTTP 200 body (sync), or the stored signal a 204 scheduled (async)."""
    if answer["statusCode"] == 200:
        body = answer["body"].encode("utf-8")
        return ebms.parse(answer["headers"]["Content-Type"], body), body
    assert answer["statusCode"] == 204, answer
    assert recorder.jobs, "an empty 204 without an answer on its way"
    signal = recorder.signals[recorder.jobs[-1]["signal"]]
    assert signal["endpoint"] == LOGIUS_ENDPOINT and recorder.jobs[-1]["kind"] == "signal"  # Logius' MSH endpoint
    body = recorder.objects[signal["body_key"]]
    return ebms.parse(signal["headers"]["Content-Type"], body), body


def _eb(root, path: str):
    found = root.find(path, NS)
    assert found is not None, path
    return found


def _set(path: str, attribute: str | None, value: str | None) -> Edit:
    def edit(root):
        element = _eb(root, path)
        if attribute is None:
            element.text = value
        elif value is None:
            element.attrib.pop(attribute, None)
        else:
            element.set(attribute, value)
    return edit


def _remove(path: str) -> Edit:
    def edit(root):
        element = _eb(root, path)
        element.getparent().remove(element)
    return edit


def _add_header(xml: str) -> Edit:
    def edit(root):
        block = etree.fromstring(f'<x xmlns:SOAP="{ebms.SOAP_NS}" xmlns:eb="{ebms.EB_NS}">{xml}</x>')[0]
        _eb(root, "SOAP:Header").append(block)
    return edit


EB = f"{{{ebms.EB_NS}}}"
SOAP = f"{{{ebms.SOAP_NS}}}"
MH = "SOAP:Header/eb:MessageHeader"


@dataclass(frozen=True)
class Rule:
    id: str
    code: str
    location: str
    edit: Edit | None = None
    message: Callable[[Profile], ebms.EbmsMessage] | None = None
    cpa: Callable[[bytes], bytes] | None = None  # the CPA as the endpoint knows it, for this row
    cert_oin: str = LOGIUS_OIN
    after_sign: Callable[[bytes], bytes] | None = None
    sign: bool | None = None
    profiles: tuple[str, ...] = tuple(PROFILES)
    synchronous: bool = False  # answered in the HTTP response whatever the profile (the sender is not known yet)
    answered_to: str = LOGIUS_OIN  # the From of the message: the error goes back to it


def _expired_ttl(profile):
    now = datetime.now(UTC)
    return result_message(profile, timestamp=now - timedelta(hours=2), time_to_live=now - timedelta(hours=1))


def _swap_payload(envelope: bytes) -> bytes:
    return envelope  # the payload is changed in the MIME part below (see _tampered_payload)


def _tampered_header(envelope: bytes) -> bytes:
    return envelope.replace(b"<eb:Action>GLOBE-R-BV-Result</eb:Action>", b"<eb:Action>GLOBE-R-A-Result</eb:Action>")


RULES = [
    # -- the schemas (msg-header-2_0.xsd, SOAP 1.1 envelope)
    Rule("schema: MessageHeader without eb:version", "OtherXml", "/SOAP:Envelope/SOAP:Header/eb:MessageHeader",
         _set(MH, f"{EB}version", None), synchronous=True),
    Rule("schema: eb:version written unqualified", "OtherXml", "/SOAP:Envelope/SOAP:Header/eb:MessageHeader",
         lambda root: (_set(MH, f"{EB}version", None)(root), _eb(root, MH).set("version", "2.0")), synchronous=True),
    Rule("schema: Timestamp not an xs:dateTime", "OtherXml",
         "/SOAP:Envelope/SOAP:Header/eb:MessageHeader/eb:MessageData/eb:Timestamp",
         _set(f"{MH}/eb:MessageData/eb:Timestamp", None, "yesterday"), synchronous=True),
    Rule("schema: MessageData children out of order", "OtherXml",
         "/SOAP:Envelope/SOAP:Header/eb:MessageHeader/eb:MessageData",
         lambda root: _eb(root, f"{MH}/eb:MessageData").insert(0, _eb(root, f"{MH}/eb:MessageData/eb:TimeToLive")),
         synchronous=True),
    Rule("schema: mustUnderstand not 0 or 1", "OtherXml", "/SOAP:Envelope/SOAP:Header/eb:MessageHeader/@SOAP:mustUnderstand",
         _set(MH, f"{SOAP}mustUnderstand", "true"), synchronous=True),
    Rule("schema: empty Service", "OtherXml", "/SOAP:Envelope/SOAP:Header/eb:MessageHeader/eb:Service",
         _set(f"{MH}/eb:Service", None, ""), synchronous=True),
    # -- the CPA: known, agreed, valid now
    Rule("CPAId not known", "ValueNotRecognized", "//eb:MessageHeader/eb:CPAId",
         _set(f"{MH}/eb:CPAId", None, "CPA-SOMEONE-ELSE"), synchronous=True),
    Rule("CPA expired", "Inconsistent", "//eb:MessageHeader/eb:CPAId",
         cpa=lambda xml: xml.replace(b"2030-12-31T23:59:59Z", b"2025-06-30T23:59:59Z")),
    Rule("CPA only proposed", "Inconsistent", "//eb:MessageHeader/eb:CPAId",
         cpa=lambda xml: xml.replace(b'tns:value="agreed"', b'tns:value="proposed"')),
    Rule("Timestamp outside the CPA's validity", "Inconsistent", "//eb:MessageHeader/eb:CPAId",
         cpa=lambda xml: xml.replace(b"2025-01-01T00:00:00Z", b"2025-06-01T00:00:00Z"),
         message=lambda p: result_message(p, timestamp=datetime(2025, 5, 1, tzinfo=UTC))),
    # -- the sender is who its certificate says
    Rule("client certificate of another organisation", "SecurityFailure", "//eb:MessageHeader/eb:From/eb:PartyId",
         cert_oin="00000001999999999000", synchronous=True),
    Rule("From is not the certificate's party", "SecurityFailure", "//eb:MessageHeader/eb:From/eb:PartyId",
         _set(f"{MH}/eb:From/eb:PartyId", None, "00000001999999999000"), synchronous=True,
         answered_to="00000001999999999000"),
    # -- versions
    Rule("MessageHeader version 1.0", "Inconsistent", "//eb:MessageHeader/@eb:version", _set(MH, f"{EB}version", "1.0")),
    Rule("AckRequested version 1.1", "Inconsistent", "//eb:AckRequested/@eb:version",
         _set("SOAP:Header/eb:AckRequested", f"{EB}version", "1.1")),
    Rule("Manifest version 2.1", "Inconsistent", "//eb:Manifest/@eb:version",
         _set("SOAP:Body/eb:Manifest", f"{EB}version", "2.1")),
    Rule("SyncReply version 3", "Inconsistent", "//eb:SyncReply/@eb:version",
         _set("SOAP:Header/eb:SyncReply", f"{EB}version", "3"), profiles=("sync", "signed")),
    # -- parties and their types
    Rule("From PartyId without a type", "Inconsistent", "//eb:MessageHeader/eb:From/eb:PartyId",
         _set(f"{MH}/eb:From/eb:PartyId", f"{EB}type", None)),
    Rule("From PartyId of another type", "Inconsistent", "//eb:MessageHeader/eb:From/eb:PartyId/@eb:type",
         _set(f"{MH}/eb:From/eb:PartyId", f"{EB}type", "urn:osb:hrn")),
    Rule("To is not us", "Inconsistent", "//eb:MessageHeader/eb:To/eb:PartyId",
         _set(f"{MH}/eb:To/eb:PartyId", None, "00000001888888888000")),
    Rule("To PartyId without a type", "Inconsistent", "//eb:MessageHeader/eb:To/eb:PartyId",
         _set(f"{MH}/eb:To/eb:PartyId", f"{EB}type", None)),
    # -- roles, service and action
    Rule("From Role missing", "Inconsistent", "//eb:MessageHeader/eb:From/eb:Role", _remove(f"{MH}/eb:From/eb:Role")),
    Rule("From Role wrong", "Inconsistent", "//eb:MessageHeader/eb:From/eb:Role", _set(f"{MH}/eb:From/eb:Role", None, "SR")),
    Rule("To Role wrong", "Inconsistent", "//eb:MessageHeader/eb:To/eb:Role", _set(f"{MH}/eb:To/eb:Role", None, "SP")),
    Rule("unknown Service", "Inconsistent", "//eb:MessageHeader/eb:Service",
         _set(f"{MH}/eb:Service", None, "MIJNOVERHEID.ebMS.BB.9.9")),
    Rule("Service of another type", "Inconsistent", "//eb:MessageHeader/eb:Service/@eb:type",
         _set(f"{MH}/eb:Service", f"{EB}type", "urn:osb:other")),
    Rule("Service without its type", "Inconsistent", "//eb:MessageHeader/eb:Service/@eb:type",
         _set(f"{MH}/eb:Service", f"{EB}type", None)),
    Rule("an Action Logius may not send us", "ValueNotRecognized", "//eb:MessageHeader/eb:Action",
         _set(f"{MH}/eb:Action", None, ebms.ACTION_BV_REQUEST)),
    Rule("an action the ebMS service does not have", "ValueNotRecognized", "//eb:MessageHeader/eb:Action",
         message=lambda p: ebms.ping(p.cpa_id, ebms.Party(LOGIUS_OIN), ebms.Party(SENDER_OIN), host="logius.test",
                                     now=datetime.now(UTC), sync_reply=p.sync),
         edit=_set(f"{MH}/eb:Action", None, "Dance")),
    # -- ConversationId, MessageId, Timestamp, TimeToLive
    Rule("MessageId not an RFC 2822 msg-id", "OtherXml", "//eb:MessageHeader/eb:MessageData/eb:MessageId",
         message=lambda p: result_message(p, message_id="no-at-sign")),
    Rule("Timestamp without a time zone", "OtherXml", "//eb:MessageHeader/eb:MessageData/eb:Timestamp",
         _set(f"{MH}/eb:MessageData/eb:Timestamp", None, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))),
    Rule("TimeToLive passed", "TimeToLiveExpired", "//eb:MessageHeader/eb:MessageData/eb:TimeToLive", message=_expired_ttl),
    Rule("TimeToLive without a time zone", "OtherXml", "//eb:MessageHeader/eb:MessageData/eb:TimeToLive",
         _set(f"{MH}/eb:MessageData/eb:TimeToLive", None,
              (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))),
    # -- reliable messaging as the CPA says
    Rule("DuplicateElimination missing", "Inconsistent", "//eb:MessageHeader/eb:DuplicateElimination",
         message=lambda p: result_message(p, duplicate_elimination=False)),
    Rule("AckRequested missing", "Inconsistent", "//eb:AckRequested",
         message=lambda p: result_message(p, ack_requested=False, ack_signature_requested=False)),
    Rule("AckRequested for the nextMSH", "NotSupported", "//eb:AckRequested/@SOAP:actor",
         _set("SOAP:Header/eb:AckRequested", f"{SOAP}actor", "urn:oasis:names:tc:ebxml-msg:actor:nextMSH")),
    Rule("AckRequested for another actor", "Inconsistent", "//eb:AckRequested/@SOAP:actor",
         _set("SOAP:Header/eb:AckRequested", f"{SOAP}actor", "urn:example:actor")),
    Rule("AckRequested signed where the CPA signs no acknowledgements", "Inconsistent", "//eb:AckRequested/@eb:signed",
         message=lambda p: result_message(p, ack_signature_requested=True), profiles=("sync", "async")),
    Rule("AckRequested unsigned where the CPA wants signed acknowledgements", "Inconsistent", "//eb:AckRequested/@eb:signed",
         message=lambda p: result_message(p, ack_signature_requested=False), profiles=("signed",)),
    Rule("SyncReply missing where the CPA says mshSignalsOnly", "Inconsistent", "//eb:SyncReply",
         message=lambda p: result_message(p, sync_reply=False), profiles=("sync", "signed")),
    Rule("SyncReply where the CPA says none", "Inconsistent", "//eb:SyncReply",
         message=lambda p: result_message(p, sync_reply=True), profiles=("async",), synchronous=True),
    Rule("SyncReply for another actor", "Inconsistent", "//eb:SyncReply/@SOAP:actor",
         _set("SOAP:Header/eb:SyncReply", f"{SOAP}actor", "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"),
         profiles=("sync", "signed")),
    Rule("MessageOrder", "NotSupported", "//eb:MessageOrder",
         _add_header('<eb:MessageOrder eb:version="2.0" SOAP:mustUnderstand="1"><eb:SequenceNumber>0</eb:SequenceNumber>'
                     "</eb:MessageOrder>")),
    # -- the Manifest and the MIME parts
    Rule("Manifest reference that is not cid:", "MimeProblem", "//eb:Manifest/eb:Reference[1]/@xlink:href",
         _set("SOAP:Body/eb:Manifest/eb:Reference", "{http://www.w3.org/1999/xlink}href", "https://example.org/result.xml")),
    Rule("cid: reference without its MIME part", "MimeProblem", "//eb:Manifest/eb:Reference[1]/@xlink:href",
         _set("SOAP:Body/eb:Manifest/eb:Reference", "{http://www.w3.org/1999/xlink}href", "cid:missing@logius.test")),
    # -- the signature, where the CPA requires one
    Rule("signature missing", "SecurityFailure", "//ds:Signature", sign=False, profiles=("signed",)),
    Rule("header changed after signing", "SecurityFailure", "//ds:Signature", after_sign=_tampered_header,
         profiles=("signed",)),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_given_a_message_that_breaks_one_rule_when_posted_then_a_message_error_names_it_and_nothing_is_stored(profile, rule):
    if profile.name not in rule.profiles:
        pytest.skip(f"the rule is not one of the {profile.name} profile")
    # Given the endpoint with the profile's CPA (or the row's variant of it)
    services, recorder = services_for(profile, rule.cpa(profile.cpa_xml) if rule.cpa else None)
    # When Logius posts a message that breaks exactly this rule
    message = rule.message(profile) if rule.message else None
    answer = post(profile, services, message, edit=rule.edit, sign=rule.sign, after_sign=rule.after_sign,
                  cert_oin=rule.cert_oin, recorder=recorder)
    # Then the answer is a MessageError, the way the CPA says (or in the response, before the sender is known)
    if profile.sync or rule.synchronous:
        assert answer["statusCode"] == 200, answer
    else:
        assert answer["statusCode"] == 204 and answer["body"] == "", answer
    error_message, _ = answer_of(profile, answer, recorder)
    assert error_message.action == ebms.ACTION_MESSAGE_ERROR and error_message.service == ebms.MSH_SERVICE
    assert error_message.acknowledgment_ref is None
    [error] = error_message.errors
    assert (error.code, error.severity, error.location) == (rule.code, "Error", rule.location), error.description
    assert error.description
    # And it refers to the message, from us to Logius
    assert error_message.ref_to_message_id == error.ref_to_message_id
    assert (error_message.from_party.oin, error_message.to_party.oin) == (SENDER_OIN, rule.answered_to)
    # And nothing of the message was stored
    assert recorder.stored() == []


def test_given_every_rule_row_then_each_code_is_one_the_spec_lists():
    spec = {"ValueNotRecognized", "NotSupported", "Inconsistent", "OtherXml", "DeliveryFailure", "TimeToLiveExpired",
            "SecurityFailure", "MimeProblem", "Unknown"}
    assert {rule.code for rule in RULES} <= spec
    assert len({rule.id for rule in RULES}) == len(RULES)


# ------------------------------------------------------------------------------------------- good ones
def test_given_a_good_result_when_posted_then_it_is_stored_and_acknowledged_as_the_cpa_says(profile):
    services, recorder = services_for(profile)
    message = result_message(profile)

    answer = post(profile, services, message, recorder=recorder)

    assert answer["statusCode"] == (200 if profile.sync else 204)
    ack, _ = answer_of(profile, answer, recorder)
    assert ack.action == ebms.ACTION_ACKNOWLEDGMENT and ack.acknowledgment_ref == message.message_id
    assert not ack.ack_requested and ack.ref_to_message_id == message.message_id
    assert ack.conversation_id == message.conversation_id and ack.cpa_id == profile.cpa_id
    assert [kind for kind, _ in recorder.stored()] == ["work", "inbound"]


def test_given_a_signed_message_asking_for_a_signed_acknowledgment_then_the_acknowledgment_is_signed_and_names_its_references(
        profile, tmp_path):
    if not profile.signed:
        pytest.skip("signed profile only")
    from bbconnect.ebms.signing import check_acknowledged_references, signature_references, verify_ebms

    services, recorder = services_for(profile)
    message = result_message(profile)
    sent = sign_ebms(ebms.envelope_of(message), message.payloads, profile.logius_key, profile.logius_cert)
    headers, body = ebms.serialize(message, envelope=sent)
    answer = receive(InboundRequest(headers=headers, body=body, client_cert_pem="pem"), services,
                     certificate_oin=lambda pem: LOGIUS_OIN, schedule=lambda job, delay: None)

    ack, ack_body = answer_of(profile, answer, recorder)
    # Our signature verifies (ours, and xmlsec1's) and the acknowledgement names what Logius signed
    verify_ebms(ack_body, {}, profile.our_cert)
    check_acknowledged_references(ack.ack_references, [(r.uri, r.digest_value) for r in signature_references(sent)])
    assert len(ack.ack_references) == 2  # the envelope and the payload
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        pytest.skip("xmlsec1 is not installed (the independent verifier)")
    (tmp_path / "ack.xml").write_bytes(ack_body)
    (tmp_path / "ours.pem").write_bytes(profile.our_cert)
    result = subprocess.run([xmlsec1, "--verify", "--pubkey-cert-pem", str(tmp_path / "ours.pem"), str(tmp_path / "ack.xml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_given_a_result_posted_twice_when_received_then_the_same_acknowledgment_comes_back_and_it_is_stored_once(profile):
    services, recorder = services_for(profile)
    message = result_message(profile)
    first = post(profile, services, message, recorder=recorder)
    first_ack, first_body = answer_of(profile, first, recorder)
    jobs = len(recorder.jobs)

    again = post(profile, services, message, recorder=recorder)

    second_ack, second_body = answer_of(profile, again, recorder)
    assert second_body == first_body and second_ack.message_id == first_ack.message_id
    assert again["statusCode"] == first["statusCode"]
    if not profile.sync:  # posted again: the same stored signal, from the start
        assert len(recorder.jobs) == jobs + 1 and recorder.jobs[-1] == recorder.jobs[jobs - 1]
    assert [kind for kind, _ in recorder.stored()] == ["work", "inbound"]


def test_given_a_ping_when_posted_then_a_pong_answers_it(profile):
    services, recorder = services_for(profile)
    ping = ebms.ping(profile.cpa_id, ebms.Party(LOGIUS_OIN), ebms.Party(SENDER_OIN), host="logius.test",
                     now=datetime.now(UTC), sync_reply=profile.sync)

    answer = post(profile, services, ping, sign=False, recorder=recorder)

    pong, _ = answer_of(profile, answer, recorder)
    assert (pong.action, pong.ref_to_message_id, pong.conversation_id) == (ebms.ACTION_PONG, ping.message_id,
                                                                          ping.conversation_id)
    assert recorder.stored() == []


def test_given_a_ping_from_another_organisation_when_posted_then_it_gets_a_message_error_not_a_crash(profile):
    # (this was an HTTP 500: a ValueError from answering a signal with an error)
    services, recorder = services_for(profile)
    ping = ebms.ping(profile.cpa_id, ebms.Party(LOGIUS_OIN), ebms.Party(SENDER_OIN), host="logius.test",
                     now=datetime.now(UTC), sync_reply=profile.sync)

    answer = post(profile, services, ping, sign=False, cert_oin="00000001999999999000", recorder=recorder)

    assert answer["statusCode"] == 200
    error, _ = answer_of(profile, answer, recorder)
    assert [e.code for e in error.errors] == ["SecurityFailure"] and error.ref_to_message_id == ping.message_id


def test_given_status_requests_when_posted_then_each_gets_the_stored_state(profile):
    services, recorder = services_for(profile)
    result = result_message(profile)
    post(profile, services, result, recorder=recorder)
    recorder.inbound[(profile.cpa_id, result.message_id)]["processed"] = False

    def ask(about: str) -> ebms.EbmsMessage:
        request = ebms.status_request(profile.cpa_id, ebms.Party(LOGIUS_OIN), ebms.Party(SENDER_OIN), about,
                                      host="logius.test", now=datetime.now(UTC), sync_reply=profile.sync)
        response, _ = answer_of(profile, post(profile, services, request, sign=False, recorder=recorder), recorder)
        assert response.action == ebms.ACTION_STATUS_RESPONSE and response.ref_to_message_id == request.message_id
        assert response.status_request_ref == about
        return response

    received = ask(result.message_id)
    assert received.status_response[0] == "Received" and received.status_response[1] is not None
    recorder.inbound[(profile.cpa_id, result.message_id)]["processed"] = True
    assert ask(result.message_id).status_response[0] == "Processed"
    assert ask("never-sent@logius.test").status_response == ("NotRecognized", None)


def test_given_an_acknowledgment_of_our_message_when_it_arrives_then_the_batch_is_acknowledged(profile, monkeypatch):
    services, recorder = services_for(profile)
    ours = ebms.new_message_id("bbconnect.test")
    recorder.globes["batch-1"] = {"message_id": ours, "cpa_id": profile.cpa_id, "to_oin": LOGIUS_OIN, "state": "sending"}
    settled = []
    monkeypatch.setattr("bbconnect.service.results.acknowledged",
                        lambda services, globe_id, at, detail=None: settled.append((globe_id, detail)))
    business = ebms.EbmsMessage(
        cpa_id=profile.cpa_id, conversation_id="batch-1", service=ebms.BERICHTENBOX_SERVICE,
        service_type=ebms.SERVICE_TYPE, action=ebms.ACTION_BV_REQUEST, from_party=ebms.Party(SENDER_OIN, "SR"),
        to_party=ebms.Party(LOGIUS_OIN, "SP"), message_id=ours, timestamp=datetime.now(UTC))
    ack = ebms.acknowledgment_for(business, host="logius.test", now=datetime.now(UTC))

    answer = post(profile, services, ack, recorder=recorder)

    assert answer["statusCode"] == 204 and answer["body"] == ""
    assert settled == [("batch-1", "asynchronous Acknowledgment")]


# ------------------------------------------------------------------------------------------- SOAP Faults
@pytest.mark.parametrize(("headers", "body", "code", "fragment"), [
    ({"SOAPAction": "wrong", "Content-Type": "text/xml"}, b"<x/>", "SOAP:Client", "SOAPAction"),
    ({"SOAPAction": '"ebXML"', "Content-Type": "text/xml"}, b"<not xml", "SOAP:Client", "not well-formed"),
    ({"SOAPAction": '"ebXML"', "Content-Type": "multipart/related; boundary=x"}, b"garbage", "SOAP:Client",
     "MIME"),
    ({"SOAPAction": '"ebXML"', "Content-Type": "text/xml"},
     f'<SOAP:Envelope xmlns:SOAP="{ebms.SOAP_NS}"><SOAP:Body/></SOAP:Envelope>'.encode(), "SOAP:Client",
     "no eb:MessageHeader"),
])
def test_given_an_envelope_that_cannot_be_processed_when_posted_then_a_soap_fault_answers(profile, headers, body, code,
                                                                                          fragment):
    services, recorder = services_for(profile)
    answer = receive(InboundRequest(headers=headers, body=body, client_cert_pem="pem"), services,
                     certificate_oin=lambda pem: LOGIUS_OIN, schedule=lambda job, delay: None)
    assert answer["statusCode"] == 500 and answer["headers"]["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(answer["body"].encode()).find("SOAP:Body/SOAP:Fault", NS)
    assert fault.findtext("faultcode") == code and fragment in fault.findtext("faultstring")
    assert recorder.writes == []


def test_given_an_unknown_mandatory_header_block_when_posted_then_a_must_understand_fault_answers(profile):
    services, recorder = services_for(profile)
    answer = post(profile, services, edit=_add_header('<x:Unknown xmlns:x="urn:x" SOAP:mustUnderstand="1"/>'),
                  recorder=recorder)
    assert answer["statusCode"] == 500
    assert "<faultcode>SOAP:MustUnderstand</faultcode>" in answer["body"]
    assert recorder.writes == []


def test_given_a_failure_on_our_side_when_posted_then_the_sender_gets_a_server_fault_to_try_again(profile, monkeypatch):
    services, recorder = services_for(profile)
    monkeypatch.setattr(services.configs, "connection_by_cpa", lambda cpa_id: (_ for _ in ()).throw(OSError("S3 down")))
    answer = post(profile, services, recorder=recorder)
    assert answer["statusCode"] == 503 and "<faultcode>SOAP:Server</faultcode>" in answer["body"]
    assert "S3 down" not in answer["body"]
