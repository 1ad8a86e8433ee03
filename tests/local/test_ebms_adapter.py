"""Adapter mode: `EbmsAdapterTransport` against the fake ebms-core REST API (over verified HTTPS)."""
from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bbconnect.adapters.ebms_adapter import (
    AdapterPayload,
    EbmsAdapterConfig,
    EbmsAdapterError,
    EbmsAdapterNotFound,
    EbmsAdapterProtocolError,
    EbmsAdapterRefused,
    EbmsAdapterTlsError,
    EbmsAdapterTransport,
    EbmsAdapterUnavailable,
)
from bbconnect_local.fake_ebms_adapter import FakeEbmsAdapter
from bbconnect_local.pki import TestPKI

CPA_ID = "BB_00000001001234567000_00000004003214345001_1"
SENDER_OIN = "00000001001234567000"
LOGIUS_OIN = "00000004003214345001"
SERVICE = "urn:osb:services:MIJNOVERHEID.ebMS.BB.2.0"
BATCH = b'<?xml version="1.0"?><Berichten xmlns="http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"/>'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("adapter-pki"))


@pytest.fixture(scope="module")
def client_bundle(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> str:
    identity = pki.issue("adapter-client", oin=SENDER_OIN, client=True, server=False)
    bundle = tmp_path_factory.mktemp("bundle") / "client.pem"
    bundle.write_bytes(identity.cert_path.read_bytes() + identity.key_path.read_bytes())
    bundle.chmod(0o600)
    return f"file:{bundle}"


@pytest.fixture
def make_adapter(pki: TestPKI) -> Iterator[Callable[..., FakeEbmsAdapter]]:
    started: list[FakeEbmsAdapter] = []

    def make(**options: object) -> FakeEbmsAdapter:
        adapter = FakeEbmsAdapter(identity=pki.issue("fake-adapter", client=False, server=True),
                                  ca_path=pki.ca_cert_path, **options)  # type: ignore[arg-type]
        adapter.start()
        started.append(adapter)
        return adapter

    yield make
    for adapter in started:
        adapter.stop()


@pytest.fixture
def adapter(make_adapter: Callable[..., FakeEbmsAdapter]) -> FakeEbmsAdapter:
    return make_adapter()


def transport_for(adapter: FakeEbmsAdapter, pki: TestPKI, **overrides: object) -> EbmsAdapterTransport:
    settings: dict[str, object] = {"base_url": adapter.base_url, "ca_bundle_ref": f"file:{pki.ca_cert_path}",
                                   "timeout": 5.0}
    settings.update(overrides)
    return EbmsAdapterTransport(EbmsAdapterConfig(**settings))  # type: ignore[arg-type]


def send(transport: EbmsAdapterTransport, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "cpa_id": CPA_ID, "from_oin": SENDER_OIN, "to_oin": LOGIUS_OIN, "service": SERVICE,
        "action": "GLOBE-R-BV-Request", "conversation_id": "conv-1", "payload": BATCH,
        "content_type": "application/xml",
    }
    arguments.update(overrides)
    return transport.send_batch(**arguments)  # type: ignore[arg-type]


# -- sending --------------------------------------------------------------------------------------


def test_send_batch_posts_the_message_and_returns_its_id(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given a transport pointed at the adapter's ebms resource
    transport = transport_for(adapter, pki)
    # When a batch is sent
    message_id = send(transport)
    # Then the adapter got one message with the CPA's parties, roles, service and action, and the payload
    (stored,) = adapter.sent
    assert message_id == stored.message_id and message_id.endswith("@fake-ebms-adapter")
    assert stored.style == "properties"
    assert stored.properties == {
        "cpaId": CPA_ID,
        "fromParty": {"partyId": f"urn:osb:oin:{SENDER_OIN}", "role": "SR"},
        "toParty": {"partyId": f"urn:osb:oin:{LOGIUS_OIN}", "role": "SP"},
        "service": SERVICE, "action": "GLOBE-R-BV-Request", "conversationId": "conv-1",
    }
    assert stored.payloads == [BATCH] and stored.data_sources[0]["contentType"] == "application/xml"
    assert adapter.requests == [("POST", "/service/rest/v19/ebms/messages")]


def test_a_given_message_id_is_kept_and_a_reused_one_is_refused(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given a transport and a chosen MessageId
    transport = transport_for(adapter, pki)
    chosen = f"{uuid.uuid4()}@bbconnect"
    # When it is sent twice / Then the first keeps the id, the second is a clear refusal (HTTP 400)
    assert send(transport, message_id=chosen) == chosen
    with pytest.raises(EbmsAdapterRefused) as refused:
        send(transport, message_id=chosen)
    assert refused.value.status == 400 and "already exists" in str(refused.value)
    assert len(adapter.sent) == 1


def test_a_base_url_without_a_path_gets_the_default_api_path(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    transport = transport_for(adapter, pki, base_url=adapter.origin)
    send(transport)
    assert adapter.requests == [("POST", "/service/rest/v19/ebms/messages")]


def test_the_message_content_style_sends_a_context(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given the older request shape
    transport = transport_for(adapter, pki, api_style="messageContent", party_id_prefix="")
    # When a batch is sent / Then the adapter read the context (parties without the urn prefix here)
    send(transport, ref_to_message_id="earlier@bbconnect")
    (stored,) = adapter.sent
    assert stored.style == "messageContent"
    assert stored.properties["fromParty"] == {"partyId": SENDER_OIN, "role": "SR"}
    assert stored.properties["refToMessageId"] == "earlier@bbconnect"
    # And unprocessed messages are listed with GET messages?cpaId=...
    transport.received(CPA_ID, "GLOBE-R-BV-Result")
    assert adapter.requests[-1] == ("GET", "/service/rest/v19/ebms/messages")


# -- status ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("DELIVERED", "delivered"), ("DELIVERY_FAILED", "failed"), ("EXPIRED", "expired")],
)
def test_status_goes_from_pending_to_the_outcome(
    make_adapter: Callable[..., FakeEbmsAdapter], pki: TestPKI, outcome: str, expected: str
) -> None:
    # Given an adapter whose messages stay CREATED for two polls, then reach the outcome
    adapter = make_adapter(outcome=outcome, pending_polls=2)
    transport = transport_for(adapter, pki)
    message_id = send(transport)
    # When the status is polled / Then pending, pending, then the mapped outcome (and it stays there)
    assert [transport.status(message_id) for _ in range(4)] == ["pending", "pending", expected, expected]
    # And the transition is an event, which can be marked processed
    assert [(e.message_id, e.type) for e in transport.events(CPA_ID)] == [
        (message_id, {"DELIVERED": "DELIVERED", "DELIVERY_FAILED": "FAILED", "EXPIRED": "EXPIRED"}[outcome])]
    transport.mark_event_processed(message_id)
    assert transport.events(CPA_ID) == []


def test_a_status_switched_by_hand(make_adapter: Callable[..., FakeEbmsAdapter], pki: TestPKI) -> None:
    # Given an adapter that leaves messages CREATED until told otherwise
    adapter = make_adapter(outcome=None)
    transport = transport_for(adapter, pki)
    message_id = send(transport)
    assert transport.status(message_id) == "pending"
    # When the fake is switched / Then the transport reports it
    adapter.set_status(message_id, "DELIVERY_FAILED")
    assert transport.status(message_id) == "failed"


def test_the_status_of_an_unknown_message_is_not_found(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    with pytest.raises(EbmsAdapterNotFound) as missing:
        transport_for(adapter, pki).status("nobody@nowhere")
    assert missing.value.status == 404 and missing.value.path.endswith("/messages/nobody%40nowhere/status")


def test_a_received_message_has_no_send_status(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given a received message (status RECEIVED) / When its send status is asked / Then a protocol error
    message_id = adapter.enqueue_received(cpa_id=CPA_ID, action="GLOBE-R-BV-Result", payload=b"<x/>")
    with pytest.raises(EbmsAdapterProtocolError, match="RECEIVED"):
        transport_for(adapter, pki).status(message_id)


# -- receiving results -------------------------------------------------------------------------------


def test_results_are_listed_fetched_and_marked_processed(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given two results (one gzipped) and a subscription answer waiting in the adapter
    report = b"<BerichtVerwerkResponse/>"
    first = adapter.enqueue_received(cpa_id=CPA_ID, action="GLOBE-R-BV-Result", payload=report,
                                     ref_to_message_id="sent@bbconnect")
    second = adapter.enqueue_received(cpa_id=CPA_ID, action="GLOBE-R-BV-Result", payload=gzip.compress(report),
                                      content_type="application/gzip")
    adapter.enqueue_received(cpa_id=CPA_ID, action="GLOBE-R-A-Result", payload=b"<AbonnementAntwoord/>")
    adapter.enqueue_received(cpa_id="another-cpa", action="GLOBE-R-BV-Result", payload=report)
    transport = transport_for(adapter, pki)
    # When the results of this CPA are listed / Then only the two BV results
    assert transport.received(CPA_ID, "GLOBE-R-BV-Result") == [first, second]
    # And fetching gives the action and the payloads as bytes (gzip left as it came), with their metadata
    action, payloads = transport.fetch(first)
    assert action == "GLOBE-R-BV-Result" and payloads == [report]
    assert isinstance(payloads[0], AdapterPayload) and payloads[0].content_type == "application/xml"
    assert "BerichtVerwerkResponse" not in repr(payloads[0])
    message = transport.fetch_message(second)
    assert message.payloads[0][:2] == b"\x1f\x8b" and message.payloads[0].content_type == "application/gzip"
    assert transport.fetch_message(first).ref_to_message_id == "sent@bbconnect"
    assert message.from_party_id == f"urn:osb:oin:{LOGIUS_OIN}" and message.status == "RECEIVED"
    # And after marking the first processed, only the second is left
    transport.mark_processed(first)
    assert transport.received(CPA_ID, "GLOBE-R-BV-Result") == [second]
    assert adapter.processed == [first]
    assert transport.fetch_message(first).status == "PROCESSED"
    assert transport.received(CPA_ID, "GLOBE-R-BV-Result", max_nr=1) == [second]


def test_mark_processed_falls_back_to_delete(make_adapter: Callable[..., FakeEbmsAdapter], pki: TestPKI) -> None:
    # Given an adapter that answers 405 to PATCH
    adapter = make_adapter(patch_allowed=False)
    message_id = adapter.enqueue_received(cpa_id=CPA_ID, action="GLOBE-R-BV-Result", payload=b"<x/>")
    # When the message is marked processed / Then with DELETE
    transport_for(adapter, pki).mark_processed(message_id)
    assert adapter.processed == [message_id]
    assert [m for m, _ in adapter.requests[-2:]] == ["PATCH", "DELETE"]


def test_marking_an_unknown_message_is_not_found(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    with pytest.raises(EbmsAdapterNotFound):
        transport_for(adapter, pki).mark_processed("nobody@nowhere")


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, EbmsAdapterUnavailable), (503, EbmsAdapterUnavailable), (429, EbmsAdapterUnavailable),
     (400, EbmsAdapterRefused), (401, EbmsAdapterRefused), (415, EbmsAdapterRefused), (404, EbmsAdapterNotFound)],
)
def test_http_errors_become_clear_exceptions(adapter: FakeEbmsAdapter, pki: TestPKI, status: int,
                                             error: type[EbmsAdapterError]) -> None:
    # Given an adapter that fails the next call, with a BSN-shaped number in its error text
    adapter.fail_next(status, "kan bericht voor 999990019 niet opslaan")
    # When a batch is sent / Then the exception class fits the status, names the call, and masks the number
    with pytest.raises(error) as raised:
        send(transport_for(adapter, pki))
    assert raised.value.status == status and raised.value.method == "POST"
    assert f"HTTP {status}" in str(raised.value) and "messages" in str(raised.value)
    assert "999990019" not in str(raised.value) and "019" in str(raised.value)


def test_an_unreachable_adapter_is_unavailable(pki: TestPKI) -> None:
    transport = EbmsAdapterTransport(EbmsAdapterConfig(base_url="https://127.0.0.1:9/service/rest/v19/ebms",
                                                       ca_bundle_ref=f"file:{pki.ca_cert_path}", timeout=2))
    with pytest.raises(EbmsAdapterUnavailable, match="no answer"):
        transport.status("x@y")


@pytest.mark.parametrize(("canned", "call"), [
    ("<html>proxy error</html>", lambda t: t.received(CPA_ID, "GLOBE-R-BV-Result")),
    ('{"ids": []}', lambda t: t.received(CPA_ID, "GLOBE-R-BV-Result")),
    ('{"properties": {}}', lambda t: t.fetch("x@y")),
    ('{"time": "now"}', lambda t: t.status("x@y")),
], ids=["html", "not-a-list", "no-action", "no-status"])
def test_an_answer_that_cannot_be_read_is_a_protocol_error(adapter: FakeEbmsAdapter, pki: TestPKI,
                                                            canned: str, call: Callable) -> None:
    # Given an adapter (or a proxy before it) answering 200 with something else than the API's JSON
    adapter.fail_next(200, canned)
    # When it is read / Then a protocol error, not a wrong answer
    with pytest.raises(EbmsAdapterProtocolError):
        call(transport_for(adapter, pki))


def test_the_adapter_certificate_is_verified(adapter: FakeEbmsAdapter) -> None:
    # Given no CA bundle: the system trust store, which does not know the test CA
    transport = EbmsAdapterTransport(EbmsAdapterConfig(base_url=adapter.base_url, timeout=5))
    # When it calls the adapter / Then the TLS verification fails, loudly and as a TLS error
    with pytest.raises(EbmsAdapterTlsError, match="did not verify"):
        send(transport)
    assert adapter.sent == []


def test_a_client_certificate_is_presented_when_configured(
    make_adapter: Callable[..., FakeEbmsAdapter], pki: TestPKI, client_bundle: str
) -> None:
    # Given an adapter that requires a client certificate
    adapter = make_adapter(require_client_cert=True)
    # When a transport without one calls / Then it fails; with one it succeeds
    with pytest.raises((EbmsAdapterTlsError, EbmsAdapterUnavailable)):
        send(transport_for(adapter, pki))
    assert send(transport_for(adapter, pki, certificate_ref=client_bundle))
    assert len(adapter.sent) == 1


def test_an_authorization_header_comes_from_a_reference(
    make_adapter: Callable[..., FakeEbmsAdapter], pki: TestPKI, tmp_path: Path
) -> None:
    # Given an adapter behind basic authentication, and the header value in a secret file
    value = "Basic " + base64.b64encode(b"bbconnect:geheim").decode()
    adapter = make_adapter(authorization=value)
    secret = tmp_path / "adapter-auth"
    secret.write_text(value + "\n")
    # When called without and with it / Then 401 is a refusal, and with it the call succeeds
    with pytest.raises(EbmsAdapterRefused) as refused:
        send(transport_for(adapter, pki))
    assert refused.value.status == 401
    assert send(transport_for(adapter, pki, authorization_ref=f"file:{secret}"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/service/rest/v19/ebms", "https:///nohost",
                                 "https://adapter.example/ebms?x=1"])
def test_only_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError):
        EbmsAdapterConfig(base_url=url)


def test_a_payload_is_required(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    with pytest.raises(ValueError):
        send(transport_for(adapter, pki), payload=b"")
    assert adapter.requests == []


def test_the_fake_speaks_the_documented_json(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given a message sent through the transport / When the fake's GET answer is read as raw JSON
    message_id = send(transport_for(adapter, pki))
    _, _, body = adapter.handle("GET", f"/service/rest/v19/ebms/messages/{message_id}", {}, b"")
    document = json.loads(body)
    # Then it has properties with messageStatus, and base64 dataSources
    assert document["properties"]["messageStatus"] == "CREATED"
    assert base64.b64decode(document["dataSources"][0]["content"]) == BATCH


def test_ping_asks_the_adapter_to_ping_the_other_party(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # (path segments are percent-encoded: a party id holds ":" and a MessageId "@")
    transport_for(adapter, pki).ping(CPA_ID, SENDER_OIN, LOGIUS_OIN)
    assert adapter.requests == [("POST", f"/service/rest/v19/ebms/ping/{CPA_ID}/from/urn%3Aosb%3Aoin%3A{SENDER_OIN}"
                                         f"/to/urn%3Aosb%3Aoin%3A{LOGIUS_OIN}")]


def test_a_fetched_message_in_the_older_context_shape_is_read_too(adapter: FakeEbmsAdapter, pki: TestPKI) -> None:
    # Given an adapter answering a message as messageContent/context (the assumed older shape)
    canned = {"messageContent": {
        "context": {"cpaId": CPA_ID, "action": "GLOBE-R-BV-Result", "messageId": "r1@logius",
                    "fromParty": {"partyId": f"urn:osb:oin:{LOGIUS_OIN}", "role": "SP"}},
        "dataSources": [{"name": "r.xml", "contentType": "text/xml",
                         "content": base64.b64encode(b"<BerichtVerwerkResponse/>").decode()}]}}
    adapter.fail_next(200, json.dumps(canned))
    # When it is fetched / Then action, sender and payload are read from the context
    message = transport_for(adapter, pki).fetch_message("r1@logius")
    assert (message.action, message.from_party_id, message.payloads) == (
        "GLOBE-R-BV-Result", f"urn:osb:oin:{LOGIUS_OIN}", [b"<BerichtVerwerkResponse/>"])
