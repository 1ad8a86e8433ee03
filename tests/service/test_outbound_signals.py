"""service/signals.py: our asynchronous ebMS answers are stored once and posted until the other MSH
takes them (2xx), retried after the CPA's RetryInterval on what can be retried, at most Retries
times, and never posted again once delivered or given up."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bbconnect.adapters.logius import LogiusUnavailable
from bbconnect.service.records import SignalRecord
from bbconnect.service.signals import deliver_signal, store_signal

NOW = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
JOB = {"kind": "signal", "tenant": "gemeente-lv", "signal": "ack-1@bbconnect"}  # the send-queue job (signals.job)


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key, data, content_type="application/octet-stream"):
        self.objects[key] = bytes(data)

    def get(self, key):
        return self.objects[key]


class Signals:
    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def create_signal(self, message_id, **fields):
        if message_id in self.items:
            return False
        self.items[message_id] = {"state": "created", "attempts": 0, **fields}
        return True

    def signal(self, message_id):
        found = self.items.get(message_id)
        return None if found is None else SignalRecord.model_validate({"message_id": message_id, **found})

    def update_signal(self, message_id, **fields):
        self.items[message_id].update(fields)


@pytest.fixture
def stored():
    services = SimpleNamespace(work=Store(), batches=Signals())
    new = store_signal(services, message_id="ack-1@bbconnect", tenant="gemeente-lv", connection="lv-logius",
                       endpoint="https://logius.example/ebms", headers={"Content-Type": "text/xml; charset=UTF-8",
                                                                        "SOAPAction": '"ebXML"'},
                       body=b"<ack/>", action="Acknowledgment", ref_to_message_id="result-1@logius",
                       retries=2, retry_interval=timedelta(seconds=30))
    assert new
    return services


def _answer(status):
    return SimpleNamespace(status=status)


def test_given_a_stored_signal_when_the_other_msh_takes_it_then_it_is_delivered_and_posted_no_more(stored):
    posted, scheduled = [], []

    outcome = deliver_signal(stored, JOB, schedule=lambda job, delay: scheduled.append(delay),
                             now=NOW, post=lambda record, body: posted.append((record.endpoint, body)) or _answer(204))
    again = deliver_signal(stored, JOB, schedule=lambda job, delay: scheduled.append(delay),
                           now=NOW, post=lambda record, body: posted.append(body) or _answer(204))

    assert outcome["state"] == "delivered" and again["state"] == "delivered"
    assert posted == [("https://logius.example/ebms", b"<ack/>")] and scheduled == []


@pytest.mark.parametrize("failure", [_answer(503), _answer(500), _answer(429), _answer(408), LogiusUnavailable("reset")])
def test_given_a_recoverable_failure_when_posting_then_the_same_bytes_are_tried_again_after_the_interval(stored, failure):
    jobs = []

    def post(record, body):
        if isinstance(failure, Exception):
            raise failure
        return failure

    first = deliver_signal(stored, JOB, schedule=lambda job, delay: jobs.append((job, delay)),
                           now=NOW, post=post)

    assert first["state"] == "retrying" and first["attempts"] == 1
    assert [delay for _, delay in jobs] == [30] and json.loads(jobs[0][0]) == {
        "kind": "signal", "tenant": "gemeente-lv", "signal": "ack-1@bbconnect"}
    # too early: it waits, without posting
    early = deliver_signal(stored, JOB, schedule=lambda job, delay: jobs.append((job, delay)),
                           now=NOW + timedelta(seconds=10), post=lambda record, body: pytest.fail("posted too early"))
    assert early["state"] == "waiting" and jobs[-1][1] == 20


def test_given_retries_used_up_when_posting_fails_again_then_the_signal_is_given_up_with_the_reason(stored):
    outcomes = [deliver_signal(stored, JOB, schedule=lambda job, delay: None,
                               now=NOW + timedelta(minutes=n), post=lambda record, body: _answer(503)) for n in range(4)]

    assert [o["state"] for o in outcomes] == ["retrying", "retrying", "failed", "failed"]
    assert "not delivered after 3 attempt(s): HTTP 503" in stored.batches.items["ack-1@bbconnect"]["reason"]


@pytest.mark.parametrize("status", [400, 403, 404, 501])
def test_given_an_unrecoverable_answer_when_posting_then_the_signal_is_given_up_at_once(stored, status):
    outcome = deliver_signal(stored, JOB, schedule=lambda job, delay: pytest.fail("retried"),
                             now=NOW, post=lambda record, body: _answer(status))
    assert outcome == {"signal": "ack-1@bbconnect", "state": "failed", "reason": f"HTTP {status}"}


def test_given_the_same_signal_stored_twice_then_it_is_one_record(stored):
    again = store_signal(stored, message_id="ack-1@bbconnect", tenant="gemeente-lv", connection="lv-logius",
                         endpoint="https://logius.example/ebms", headers={}, body=b"<ack/>", action="Acknowledgment",
                         ref_to_message_id="result-1@logius", retries=None, retry_interval=None)
    assert not again and len(stored.batches.items) == 1
