"""The per-connection throttle in DynamoDB (moto): tokens and slots are never overdrawn, also when
two send Lambdas race for them."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bbconnect.adapters.throttle import ConnectionThrottle, key
from bbconnect.shaping import Admit, SendLimits, Wait

OIN = "00000001899410741000"
T0 = 1_800_000_000.0
LEASE = 120.0
FIVE_A_SECOND = SendLimits(rate=5, max_in_flight=2)  # a bucket of 50 letters


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.resource("dynamodb", region_name="eu-west-1").create_table(
            TableName="batches", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


class RaceAfterRead:
    """The table as one Lambda sees it: right after its first read, `meanwhile` (the other Lambda)
    runs to the end. So both decide on the same stored bucket, and the first to write wins."""

    def __init__(self, table, meanwhile):
        self._table, self._meanwhile, self.reads, self.writes_refused = table, meanwhile, 0, 0

    def get_item(self, **kwargs):
        item = self._table.get_item(**kwargs)
        self.reads += 1
        if self.reads == 1:
            self._meanwhile()
        return item

    def put_item(self, **kwargs):
        try:
            return self._table.put_item(**kwargs)
        except ClientError:
            self.writes_refused += 1
            raise

    def update_item(self, **kwargs):
        return self._table.update_item(**kwargs)


def test_given_a_new_connection_when_a_batch_takes_its_turn_then_the_item_holds_the_tokens_left_and_the_leased_slot(table):
    throttle = ConnectionThrottle(table)
    # When a GLOBE batch of 30 letters asks on a connection never used
    decision = throttle.acquire(OIN, holder="batch-1", letters=30, limits=FIVE_A_SECOND, lease_seconds=LEASE, now=T0)
    # Then it may go, and the batches table holds the connection's bucket under throttle#<oin>
    assert isinstance(decision, Admit)
    item = table.get_item(Key={"pk": f"throttle#{OIN}"})["Item"]
    assert key(OIN) == f"throttle#{OIN}"
    assert float(item["tokens"]) == 20 and float(item["updated_at"]) == T0
    assert {holder: float(until) for holder, until in item["slots"].items()} == {"batch-1": T0 + LEASE}
    # And the item goes away by itself once the connection has been idle for a week
    assert int(item["expires_at"]) == int(T0) + 7 * 86400


def test_given_two_lambdas_racing_for_the_last_tokens_then_only_one_gets_them_and_the_other_waits(table):
    # Given a full bucket of 50 letters, and two send Lambdas that each want 30 for their batch
    outcome = {}

    def lambda_b():
        outcome["b"] = ConnectionThrottle(table).acquire(OIN, holder="batch-b", letters=30, limits=FIVE_A_SECOND,
                                                         lease_seconds=LEASE, now=T0)

    raced = RaceAfterRead(table, lambda_b)
    # When Lambda A reads the bucket, Lambda B takes its tokens in between, and A tries to write
    outcome["a"] = ConnectionThrottle(raced).acquire(OIN, holder="batch-a", letters=30, limits=FIVE_A_SECOND,
                                                     lease_seconds=LEASE, now=T0)
    # Then B's batch may go, A's write was refused, and A, deciding again on what B left, waits
    # for the 10 letters missing (2 seconds at 5 a second)
    assert isinstance(outcome["b"], Admit)
    assert raced.writes_refused == 1 and raced.reads == 2
    assert outcome["a"] == Wait(2.0, "rate")
    # And the bucket was drawn once: 20 left, one slot taken
    state = ConnectionThrottle(table).state(OIN)
    assert state.tokens == 20 and set(state.slots) == {"batch-b"}


def test_given_two_lambdas_racing_for_the_last_slot_then_only_one_gets_it(table):
    # Given a connection with one batch in flight at most, plenty of tokens and one slot free
    one_at_a_time = SendLimits(rate=1000, max_in_flight=1)
    ConnectionThrottle(table).acquire(OIN, holder="earlier", letters=1, limits=one_at_a_time, lease_seconds=LEASE, now=T0)
    ConnectionThrottle(table).release(OIN, "earlier")
    outcome = {}

    def lambda_b():
        outcome["b"] = ConnectionThrottle(table).acquire(OIN, holder="batch-b", letters=10, limits=one_at_a_time,
                                                         lease_seconds=LEASE, now=T0 + 1)

    # When both want the slot at the same moment
    outcome["a"] = ConnectionThrottle(RaceAfterRead(table, lambda_b)).acquire(
        OIN, holder="batch-a", letters=10, limits=one_at_a_time, lease_seconds=LEASE, now=T0 + 1)
    # Then one has it and the other waits for it
    assert isinstance(outcome["b"], Admit)
    assert isinstance(outcome["a"], Wait) and outcome["a"].reason == "slots"
    assert set(ConnectionThrottle(table).state(OIN).slots) == {"batch-b"}


def test_given_a_slot_given_back_while_another_lambda_decides_then_it_waits_briefly_and_the_release_stands(table):
    # Given a connection with one slot, held by a batch whose acknowledgement is coming in
    one_at_a_time = SendLimits(rate=1000, max_in_flight=1)
    ConnectionThrottle(table).acquire(OIN, holder="acknowledged", letters=1, limits=one_at_a_time, lease_seconds=LEASE,
                                      now=T0)

    def acknowledgement_arrives():
        ConnectionThrottle(table).release(OIN, "acknowledged")

    # When another Lambda reads the bucket (slot taken), and the slot is given back before it decides
    decision = ConnectionThrottle(RaceAfterRead(table, acknowledgement_arrives)).acquire(
        OIN, holder="next", letters=1, limits=one_at_a_time, lease_seconds=LEASE, now=T0 + 1)
    # Then, having read a taken slot, it waits no longer than the recheck time and writes nothing
    assert decision == Wait(5.0, "slots")
    assert ConnectionThrottle(table).state(OIN).slots == {}
    # And when it looks again, the slot is its
    again = ConnectionThrottle(table).acquire(OIN, holder="next", letters=1, limits=one_at_a_time, lease_seconds=LEASE,
                                              now=T0 + 6)
    assert isinstance(again, Admit) and set(ConnectionThrottle(table).state(OIN).slots) == {"next"}


def test_given_a_write_racing_a_release_then_the_release_wins_and_the_slot_is_not_resurrected(table):
    # Given two slots, one held by a batch that is acknowledged while another batch takes the second
    limits = SendLimits(rate=1000, max_in_flight=2)
    ConnectionThrottle(table).acquire(OIN, holder="acknowledged", letters=1, limits=limits, lease_seconds=LEASE, now=T0)

    def acknowledgement_arrives():
        ConnectionThrottle(table).release(OIN, "acknowledged")

    raced = RaceAfterRead(table, acknowledgement_arrives)
    # When the other batch read the bucket with both slots in it and writes after the release
    decision = ConnectionThrottle(raced).acquire(OIN, holder="second", letters=1, limits=limits, lease_seconds=LEASE,
                                                 now=T0 + 1)
    # Then its stale write is refused, it decides again, and the released slot stays released
    assert isinstance(decision, Admit) and raced.writes_refused == 1
    assert set(ConnectionThrottle(table).state(OIN).slots) == {"second"}


def test_given_no_slot_held_when_released_then_nothing_is_written(table):
    throttle = ConnectionThrottle(table)
    # When a batch that never took a slot (or gave it back already) releases, on a connection never used
    throttle.release(OIN, "never-held")
    # Then no item appears
    assert "Item" not in table.get_item(Key={"pk": f"throttle#{OIN}"})
    # And on a used connection the bucket is left as it was
    throttle.acquire(OIN, holder="holder", letters=5, limits=FIVE_A_SECOND, lease_seconds=LEASE, now=T0)
    before = table.get_item(Key={"pk": f"throttle#{OIN}"})["Item"]
    throttle.release(OIN, "never-held")
    assert table.get_item(Key={"pk": f"throttle#{OIN}"})["Item"] == before


def test_given_a_crashed_holder_when_its_lease_has_ended_then_the_next_batch_gets_the_slot_and_the_stale_one_is_dropped(table):
    one_at_a_time = SendLimits(rate=1000, max_in_flight=1)
    throttle = ConnectionThrottle(table)
    throttle.acquire(OIN, holder="crashed", letters=1, limits=one_at_a_time, lease_seconds=LEASE, now=T0)
    # When another batch asks before and after the lease ends
    before = throttle.acquire(OIN, holder="next", letters=1, limits=one_at_a_time, lease_seconds=LEASE, now=T0 + 10)
    after = throttle.acquire(OIN, holder="next", letters=1, limits=one_at_a_time, lease_seconds=LEASE, now=T0 + LEASE)
    # Then it waits at first, and then gets the slot, which is the only one stored
    assert isinstance(before, Wait) and isinstance(after, Admit)
    assert set(throttle.state(OIN).slots) == {"next"}


def test_given_a_lambda_that_loses_every_race_then_it_gives_up_for_now_without_taking_anything(table):
    # Given a Lambda whose every write is beaten by another
    def always_beaten(**kwargs):
        raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "beaten"}}, "PutItem")

    class Beaten:
        get_item = staticmethod(table.get_item)
        put_item = staticmethod(always_beaten)

    # When it asks for its turn, Then it is told to look again shortly, and the bucket is untouched
    decision = ConnectionThrottle(Beaten(), max_tries=3).acquire(OIN, holder="unlucky", letters=1, limits=FIVE_A_SECOND,
                                                                 lease_seconds=LEASE, now=T0)
    assert decision == Wait(1.0, "contention")
    assert ConnectionThrottle(table).state(OIN) is None
