"""The stored ebMS message: the GLOBE payload is stored once (berichten.xml), the message around it
apart, and every attempt posts exactly the bytes the message was built as."""
from __future__ import annotations

from datetime import UTC, datetime

from bbconnect.ebms import message as ebms
from bbconnect.service.records import GlobeRecord
from bbconnect.service.send import frame_of, stored_message


class _Blobs:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get(self, key: str) -> bytes:
        return self.objects[key]


class _Services:
    def __init__(self, objects):
        self.work = _Blobs(objects)


def _record(**message) -> GlobeRecord:
    return GlobeRecord(globe_batch_id="g-1", batch_id="b-1", chunk=0, tenant="gemeente-lv", connection="lv-logius",
                       endpoint="https://ebms.logius.example/globe/ebms", cpa_id="CPA-1", from_oin="00000001899410741000",
                       to_oin="00000001822477348000", **message)


def _message(payload: bytes) -> ebms.EbmsMessage:
    party = ebms.Party(oin="00000001899410741000", role="SR")
    logius = ebms.Party(oin="00000001822477348000", role="SP")
    return ebms.EbmsMessage(
        cpa_id="CPA-1", conversation_id="g-1", service=ebms.BERICHTENBOX_SERVICE, service_type=None,
        action=ebms.ACTION_BV_REQUEST, from_party=party, to_party=logius, message_id=ebms.new_message_id("bbconnect.local"),
        timestamp=datetime(2027, 2, 26, tzinfo=UTC), time_to_live=None, ack_requested=True, duplicate_elimination=True,
        sync_reply=True, payloads=(ebms.Payload(content_id="g-1@bbconnect", content_type="application/xml", data=payload),))


def test_given_a_built_message_when_stored_as_frame_and_payload_then_the_attempt_posts_the_same_bytes():
    # Given a GLOBE payload whose opening also appears in the SOAP envelope's neighbourhood
    payload = b'<?xml version="1.0" encoding="UTF-8"?>\n<Berichten>' + b"<Bericht>x</Bericht>" * 5000 + b"</Berichten>"
    _headers, body = ebms.serialize(_message(payload))
    # When the message is stored without its payload
    frame, offset = frame_of(body, payload)
    # Then the frame is small, and frame + payload give back the exact message
    assert offset is not None and len(frame) < 4000 and payload not in frame
    record = _record(body_key="m.mime", payload_key="berichten.xml", payload_offset=offset)
    assert stored_message(record, _Services({"m.mime": frame, "berichten.xml": payload})) == body


def test_given_a_message_without_the_payload_whole_when_framed_then_the_body_is_stored_as_it_is():
    frame, offset = frame_of(b"--b\r\nsomething else\r\n--b--\r\n", b"<Berichten/>")
    assert offset is None and frame == b"--b\r\nsomething else\r\n--b--\r\n"
    assert stored_message(_record(body_key="m"), _Services({"m": frame})) == frame
