"""The inbound ebMS endpoint (service/results.py) under hostile input: a hostile envelope, a hostile
or bombed result payload, a compressed HTTP body, an odd BatchID, a bad subscription answer. Each is
answered with a specific error, nothing is written, and the endpoint keeps answering good messages."""
from __future__ import annotations

import gzip
import tracemalloc

import pytest

from bbconnect.ebms import message as ebms
from bbconnect.logius import globe
from bbconnect.logius.abonnementen import parse_answer
from bbconnect.service.results import InboundRequest, receive

from .corpus import SECRET, XML_ATTACKS, gzip_bomb
from .inbound import LOGIUS_OIN, fake_services, globe_result, inbound_message, subscription_answer


def _post(services, headers: dict[str, str], body: bytes, *, on_bulk_answer=None) -> dict:
    request = InboundRequest(headers={**headers, "SOAPAction": '"ebXML"'}, body=body, client_cert_pem="logius-cert")
    return receive(request, services, certificate_oin=lambda pem: LOGIUS_OIN, on_bulk_answer=on_bulk_answer)


def _signal(answer: dict) -> ebms.EbmsMessage:
    assert answer["statusCode"] == 200, answer
    return ebms.parse(answer["headers"]["Content-Type"], answer["body"].encode("utf-8"))


def _fault_of(answer: dict) -> tuple[str, str]:
    """(faultcode, faultstring) of a SOAP Fault answer."""
    from lxml import etree

    assert answer["headers"]["Content-Type"].startswith("text/xml"), answer
    fault = etree.fromstring(answer["body"].encode("utf-8")).find(f"{{{ebms.SOAP_NS}}}Body/{{{ebms.SOAP_NS}}}Fault")
    assert fault is not None, answer
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def _error_of(answer: dict) -> ebms.EbmsError:
    signal = _signal(answer)
    assert signal.acknowledgment_ref is None and len(signal.errors) == 1, signal
    return signal.errors[0]


def test_given_a_good_result_when_posted_then_it_is_stored_and_acknowledged():
    # (the fake services record writes: this shows they do when something is written)
    services, recorder = fake_services()
    answer = _post(services, *ebms.serialize(inbound_message()))
    assert _signal(answer).acknowledgment_ref
    assert [write[:2] for write in recorder.writes] == [("work", "put"), ("batches", "record_inbound")]


# An attack with more bytes than API Gateway and Lambda let through never reaches the parser on AWS:
# the endpoint refuses it by its size (the last test here).
FITS_THE_FRONT_DOOR = [attack for attack in XML_ATTACKS if attack.id != "huge-attribute"]


@pytest.mark.parametrize("attack", FITS_THE_FRONT_DOOR, ids=lambda attack: attack.id)
def test_given_a_hostile_soap_envelope_when_posted_then_it_gets_a_soap_fault_and_nothing_is_written(attack, context, server):
    # Given an ebMS result whose SOAP envelope carries the attack
    services, recorder = fake_services()
    message = inbound_message()
    headers, body = ebms.serialize(message, envelope=attack.attack(ebms.envelope_of(message), context))
    hits = len(server.hits)
    # When it is posted to the inbound endpoint
    answer = _post(services, headers, body)
    # Then it is refused with a SOAP Fault (an envelope that cannot be processed), with the reason
    assert answer["statusCode"] == 500
    code, text = _fault_of(answer)
    assert code == "SOAP:Client"
    assert text.startswith("not an ebMS message: the SOAP envelope is refused: ") and attack.fragment in text
    # And nothing is written, read from disk or fetched
    assert recorder.writes == []
    assert SECRET not in answer["body"] and len(server.hits) == hits


@pytest.mark.parametrize("attack", FITS_THE_FRONT_DOOR, ids=lambda attack: attack.id)
def test_given_a_hostile_result_payload_when_posted_then_logius_gets_a_message_error_and_nothing_is_written(attack, context, server):
    # Given a well-formed ebMS message whose GLOBE result (the payload) carries the attack
    services, recorder = fake_services()
    hits = len(server.hits)
    answer = _post(services, *ebms.serialize(inbound_message(attack.attack(globe_result(), context))))
    # Then the answer is an ebMS MessageError (OtherXml) that names the problem
    error = _error_of(answer)
    assert error.code == "OtherXml" and error.severity == "Error"
    assert error.description.startswith("the processing report is not readable: ") and attack.fragment in error.description
    # And nothing is stored, not even the duplicate-elimination record, and nothing was fetched
    assert recorder.writes == []
    assert SECRET not in answer["body"] and len(server.hits) == hits


def test_given_a_gzip_bomb_as_the_result_payload_when_posted_then_it_is_refused_while_unpacking_within_the_bound():
    # Given a result payload of gzip members that unpack to 1 GiB (about 1 MB as sent)
    services, recorder = fake_services()
    headers, body = ebms.serialize(inbound_message(gzip_bomb()))
    assert len(body) < 2_000_000
    # When it is posted, while allocations are traced
    tracemalloc.start()
    try:
        answer = _post(services, headers, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then unpacking stops at the result limit, and Logius gets a MessageError naming it
    error = _error_of(answer)
    assert error.code == "OtherXml"
    assert f"gzipped result expands beyond {globe.MAX_RESULT_BYTES} bytes; refused" in error.description
    assert peak < 4 * globe.MAX_RESULT_BYTES < 1024 ** 3 // 10, f"peak {peak} bytes"
    assert recorder.writes == []


def test_given_a_gzip_encoded_http_body_when_posted_then_it_is_refused_with_415_without_unpacking():
    # Given an ebMS message sent with Content-Encoding: gzip, whose body is a bomb
    services, recorder = fake_services()
    headers, _ = ebms.serialize(inbound_message())
    bomb = gzip_bomb()
    tracemalloc.start()
    try:
        answer = _post(services, {**headers, "Content-Encoding": "gzip"}, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it is refused for its encoding, never unpacked, and nothing is written
    assert answer["statusCode"] == 415 and "Content-Encoding 'gzip' is not accepted" in _fault_of(answer)[1]
    assert peak < 1_000_000
    assert recorder.writes == []


@pytest.mark.parametrize("batch_id", ["../../gemeente-lv/reports/x", "x" * 5000, "6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a00\x1b",
                                      "not-a-guid", "<script>"])
def test_given_a_result_whose_batch_id_is_not_a_guid_when_posted_then_it_is_refused_and_nothing_is_stored(batch_id):
    # Given a well-formed result whose BatchID would become part of a storage key
    services, recorder = fake_services()
    document = globe_result("0b7e5b1e-8d9a-4f6e-9c1d-1b2c3d4e5f60")
    from xml.sax.saxutils import escape

    document = document.replace(b"0b7e5b1e-8d9a-4f6e-9c1d-1b2c3d4e5f60", escape(batch_id).encode("utf-8", "replace"))
    answer = _post(services, *ebms.serialize(inbound_message(document)))
    # Then Logius gets a MessageError, and no key was built from it
    error = _error_of(answer)
    if "\x1b" in batch_id:  # a control character is no XML at all
        assert error.code == "OtherXml"
    else:
        assert error.code == "ValueNotRecognized" and "BatchID is not a GUID" in error.description
    assert recorder.writes == []


@pytest.mark.parametrize("payload,fragment", [
    (b"<!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><a>&x;</a>", "DOCTYPE"),
    (b"\x1f\x8b\x08\x00corrupt", "the subscription answer is not readable"),
    (gzip.compress(subscription_answer())[:-20], "the subscription answer is not readable"),
    (b"<Other/>", "not an AbonnementAntwoord"),
])
def test_given_a_bad_subscription_answer_when_posted_then_logius_gets_a_message_error_not_a_crash(payload, fragment):
    services, recorder = fake_services()
    message = inbound_message(payload, action=ebms.ACTION_A_RESULT)
    answer = _post(services, *ebms.serialize(message), on_bulk_answer=lambda m, data: parse_answer(data))
    error = _error_of(answer)
    assert error.code == "OtherXml" and fragment in error.description
    assert recorder.writes == []


def test_given_every_attack_in_turn_when_a_good_result_follows_then_it_is_still_acknowledged(context):
    # The endpoint keeps no state from a refused message: the same services answer a good one after all
    services, recorder = fake_services()
    for attack in XML_ATTACKS:
        _post(services, *ebms.serialize(inbound_message(attack.attack(globe_result(), context))))
    _post(services, {"Content-Type": "text/xml", "Content-Encoding": "br"}, b"\x00" * 100)
    assert recorder.writes == []
    assert _signal(_post(services, *ebms.serialize(inbound_message()))).acknowledgment_ref
    assert len(recorder.writes) == 2


def test_given_a_message_id_too_long_for_a_storage_key_when_posted_then_it_is_refused_before_anything_is_stored():
    from dataclasses import replace

    services, recorder = fake_services()
    answer = _post(services, *ebms.serialize(replace(inbound_message(), message_id="x" * 5000 + "@logius.test")))
    assert answer["statusCode"] == 500 and "longer than 256 characters" in _fault_of(answer)[1]
    assert recorder.writes == []


def test_given_a_message_larger_than_the_front_door_takes_when_posted_then_it_is_refused_by_its_size_unread():
    # Given a message with more bytes than API Gateway passes to Lambda (bbconnect.limits)
    from bbconnect.limits import INBOUND_BODY_BYTES

    services, recorder = fake_services()
    headers, body = ebms.serialize(inbound_message(globe_result() + b" " * INBOUND_BODY_BYTES))
    assert len(body) > INBOUND_BODY_BYTES
    # When it is posted / Then it is refused as too large, and nothing is parsed or written
    answer = _post(services, headers, body)
    assert answer["statusCode"] == 413
    assert recorder.writes == []
