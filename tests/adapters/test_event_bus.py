"""Putting status events on the bus (bbconnect.adapters.event_bus): in calls within EventBridge's
limits, the entries that fail put again (and only those), the ones that never go through counted,
and nothing raised."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from bbconnect.adapters.event_bus import EventPublisher
from bbconnect.letter_events import LetterEvent, to_entry
from bbconnect.status import Status

AT = datetime(2027, 2, 26, 9, 30, tzinfo=UTC)
BUS = "bbconnect-letter-status"
REGION = "eu-west-1"


def _entries(count: int, *, tenant: str = "gemeente-lv") -> list[dict]:
    return [to_entry(LetterEvent(Status.ACCEPTED, tenant, "batch-1", line, AT, reference=f"lv-{line}"), BUS)
            for line in range(1, count + 1)]


def _ok(count: int) -> dict:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{n}"} for n in range(count)]}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def events():
    return boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_given_some_entries_failing_when_published_then_exactly_the_failed_ones_are_put_again(events):
    entries = _entries(4)
    sleeps = Sleeps()
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 2, "Entries": [
            {"EventId": "e-1"}, {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
            {"EventId": "e-3"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}]}, {"Entries": entries})
        stub.add_response("put_events", _ok(2), {"Entries": [entries[1], entries[3]]})
        outcome = EventPublisher(events, sleep=sleeps, jitter=lambda: 1.0).publish(entries)
        stub.assert_no_pending_responses()
    assert (outcome.published, outcome.retried, outcome.undelivered) == (4, 2, [])
    assert sleeps == [0.2]


def test_given_an_entry_that_keeps_failing_when_published_then_it_is_tried_max_attempts_times_with_growing_waits_and_counted(events):
    entries = _entries(2)
    sleeps = Sleeps()
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"EventId": "e-1"}, {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}]}, {"Entries": entries})
        for _ in range(3):
            stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}]}, {"Entries": [entries[1]]})
        outcome = EventPublisher(events, max_attempts=4, sleep=sleeps, jitter=lambda: 1.0).publish(entries)
        stub.assert_no_pending_responses()
    assert outcome.published == 1 and len(outcome.undelivered) == 1
    [lost] = outcome.undelivered
    assert (lost.detail_type, lost.error) == ("Letter Accepted", "ThrottlingException")
    assert lost.event_id == json.loads(entries[1]["Detail"])["event_id"]
    assert sleeps == [0.2, 0.4, 0.8]


@pytest.mark.parametrize("code", ["MalformedDetail", "AccessDeniedException", "NotAuthorizedForSourceException"])
def test_given_an_entry_refused_for_a_reason_no_retry_fixes_then_it_is_counted_at_once(events, code):
    entries = _entries(2)
    sleeps = Sleeps()
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": code, "ErrorMessage": "no"}, {"EventId": "e-2"}]}, {"Entries": entries})
        outcome = EventPublisher(events, sleep=sleeps).publish(entries)
        stub.assert_no_pending_responses()
    assert outcome.published == 1 and [u.error for u in outcome.undelivered] == [code] and sleeps == []


def test_given_the_whole_call_failing_once_then_the_call_is_made_again_and_nothing_raises(events):
    entries = _entries(3)
    with Stubber(events) as stub:
        stub.add_client_error("put_events", "InternalException", "try again", 500, expected_params={"Entries": entries})
        stub.add_response("put_events", _ok(3), {"Entries": entries})
        outcome = EventPublisher(events, sleep=Sleeps()).publish(entries)
        stub.assert_no_pending_responses()
    assert (outcome.published, outcome.undelivered) == (3, [])


def test_given_eventbridge_out_of_reach_then_the_entries_are_counted_undelivered_and_nothing_raises():
    class Unreachable:
        calls = 0

        def put_events(self, Entries):
            self.calls += 1
            raise EndpointConnectionError(endpoint_url="https://events.eu-west-1.amazonaws.com")

    client = Unreachable()
    outcome = EventPublisher(client, max_attempts=3, sleep=Sleeps()).publish(_entries(12))
    assert outcome.published == 0 and len(outcome.undelivered) == 12 and client.calls == 6
    assert {u.error for u in outcome.undelivered} == {"EndpointConnectionError"}


def test_given_many_entries_then_they_go_in_calls_of_ten_a_few_at_once_and_all_arrive_once():
    class Recording:
        def __init__(self):
            self.calls, self.lock, self.threads = [], threading.Lock(), set()

        def put_events(self, Entries):
            with self.lock:
                self.calls.append(list(Entries))
                self.threads.add(threading.get_ident())
            return _ok(len(Entries))

    client = Recording()
    entries = _entries(95)
    outcome = EventPublisher(client, concurrency=3).publish(iter(entries))
    assert outcome.published == 95 and outcome.undelivered == []
    assert sorted(len(call) for call in client.calls) == [5] + [10] * 9
    assert sorted(e["Detail"] for call in client.calls for e in call) == sorted(e["Detail"] for e in entries)
    assert 1 <= len(client.threads) <= 3


def test_given_nothing_to_publish_then_no_call_is_made():
    class Never:
        def put_events(self, Entries):
            raise AssertionError("called")

    assert EventPublisher(Never()).publish([]).published == 0


def test_given_a_bus_with_a_rule_to_a_queue_when_published_then_the_queue_gets_each_event_as_eventbridge_delivers_it():
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name=BUS)
        queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["bbconnect"]}))
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        outcome = EventPublisher(events).publish(_entries(12))
        received = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            received += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                                                              for n, m in enumerate(batch)])
    assert outcome.published == 12
    assert sorted(event["detail"]["line"] for event in received) == list(range(1, 13))
    assert {(event["source"], event["detail-type"]) for event in received} == {("bbconnect", "Letter Accepted")}
