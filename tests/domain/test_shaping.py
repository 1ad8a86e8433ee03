"""Peak shaping: the per-connection token bucket and in-flight slots, and spreading PublicatieDatum."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bbconnect import shaping
from bbconnect.letters import Letter
from bbconnect.shaping import Admit, BucketState, SendLimits, Wait, decide
from bbconnect.tenants import TenantConfig
from bbconnect.validation import PUBLISH_MAX_AHEAD

AMS = ZoneInfo("Europe/Amsterdam")
UTC = UTC
T0 = 1_800_000_000.0  # epoch seconds; the bucket only ever sees differences
LEASE = 120.0

OIN = "00000001899410741000"
SHARED_OIN = "00000003912345670000"


def _config(**stream_extra) -> TenantConfig:
    organisation = {"name": "Gemeente Proefstad", "iban": "NL86BNGH9963334018", "phone": "14 000",
                    "website": "www.proefstad.example",
                    "address": {"street": "Markt", "house_number": "1", "postcode": "1234 AB", "city": "Proefstad"}}
    connection = {"endpoint": "https://ebms.logius.example/ebms", "wus_endpoint": "https://wus.logius.example/wus",
                  "cpa_id": "cpa-1", "certificate": "file:certs/a.pem"}
    return TenantConfig.model_validate({
        "tenant": "proef", "version": 1, "name": "Proef",
        "organisations": {
            "org-a": {"id": "org-a", "oin": OIN, **organisation},
            "org-b": {"id": "org-b", "oin": "00000001856629388000", **organisation},
            "org-c": {"id": "org-c", "oin": "00000001828898923000", **organisation},
        },
        "streams": {
            "SPREAD": {"code": "SPREAD", "name": "Spread", "policy": "digital_first", "bsn_lawful": True, **stream_extra},
            "ATONCE": {"code": "ATONCE", "name": "At once", "policy": "digital_first", "bsn_lawful": True},
        },
        "connections": {
            "own": {"id": "own", "oin": OIN, "senders": ["org-a"], "max_send_rate": 5, **connection},
            "shared-1": {"id": "shared-1", "oin": SHARED_OIN, "senders": ["org-b"], "max_send_rate": 20,
                         "max_concurrent_batches": 4, **connection},
            "shared-2": {"id": "shared-2", "oin": SHARED_OIN, "senders": ["org-c"], "max_send_rate": 10,
                         "max_concurrent_batches": 3, **connection},
        },
    })


# ---------------------------------------------------------------------- the token bucket
def test_given_a_bucket_when_time_passes_then_it_refills_at_the_rate_up_to_its_capacity_only():
    # Given a connection of 5 letters a second, whose bucket holds 10 seconds of it
    assert shaping.capacity(5) == 50
    # When time passes, Then it refills at the rate, never above the capacity, and a clock that
    # went backwards adds nothing
    assert shaping.refill(0, 4, 5) == 20
    assert shaping.refill(45, 4, 5) == 50
    assert shaping.refill(-100, 10, 5) == -50
    assert shaping.refill(10, -30, 5) == 10
    # And a very slow connection still holds at least one letter
    assert shaping.capacity(0.01) == 1


def test_given_a_new_connection_when_a_batch_the_size_of_the_bucket_comes_then_it_goes_at_once():
    # Given a connection never used before (no stored bucket)
    limits = SendLimits(rate=5, max_in_flight=2)
    # When a GLOBE batch of 50 letters asks
    decision = decide(None, holder="batch-1", letters=50, limits=limits, now=T0, lease_seconds=LEASE)
    # Then it is admitted, the bucket is empty and the batch holds a slot under a lease
    assert isinstance(decision, Admit)
    assert decision.state.tokens == 0 and decision.state.updated_at == T0
    assert decision.state.slots == {"batch-1": T0 + LEASE}


def test_given_an_empty_bucket_when_the_next_batch_asks_then_it_waits_exactly_until_the_tokens_are_there():
    # Given a bucket emptied by a batch a moment ago
    limits = SendLimits(rate=5, max_in_flight=2)
    state = BucketState(tokens=0, updated_at=T0, slots={})
    # When a batch of 30 letters asks 2 seconds later
    decision = decide(state, holder="batch-2", letters=30, limits=limits, now=T0 + 2, lease_seconds=LEASE)
    # Then it waits for the 20 letters missing: 4 more seconds at 5 a second
    assert decision == Wait(4.0, "rate")
    # And when it asks again at that moment, it is admitted
    assert isinstance(decide(state, holder="batch-2", letters=30, limits=limits, now=T0 + 6, lease_seconds=LEASE), Admit)


def test_given_a_batch_larger_than_the_bucket_when_the_bucket_is_full_then_it_goes_and_the_debt_holds_the_next_back():
    # Given a full bucket of 50 letters (5 a second)
    limits = SendLimits(rate=5, max_in_flight=2)
    full = BucketState.full(limits, T0)
    # When a GLOBE batch of 1000 letters asks, Then it goes and leaves the bucket 950 in debt
    first = decide(full, holder="big", letters=1000, limits=limits, now=T0, lease_seconds=LEASE)
    assert isinstance(first, Admit) and first.state.tokens == -950
    # And the next batch of 50 waits until the debt is paid and 50 are back: 200 seconds
    assert decide(first.state, holder="next", letters=50, limits=limits, now=T0, lease_seconds=LEASE) == Wait(200.0, "rate")


def test_given_batches_admitted_as_early_as_allowed_then_no_period_carries_more_than_the_rate_plus_the_burst():
    # Given a connection of 5 letters a second and batches of mixed sizes, each posted as soon as
    # the bucket admits it (and its slot given back at once)
    limits = SendLimits(rate=5, max_in_flight=1)
    sizes = [50, 1000, 3, 700, 50, 50, 999, 1, 400, 250] * 3
    state, now, sent = None, T0, []
    for number, size in enumerate(sizes):
        while True:
            decision = decide(state, holder=f"b{number}", letters=size, limits=limits, now=now, lease_seconds=LEASE)
            if isinstance(decision, Admit):
                break
            now += decision.seconds
        state = shaping.release(decision.state, f"b{number}", now=now)
        sent.append((now, size))
    # Then in every window from one post to a later one, the letters posted before the window's end
    # are at most the bucket, plus the rate times the window, plus the one batch that took it into debt
    for i, (start, _) in enumerate(sent):
        for end, _ in sent[i:]:
            letters = sum(size for moment, size in sent[i:] if moment < end)
            assert letters <= limits.capacity + limits.rate * (end - start) + 1e-6
    # And over the whole run the average rate is the configured one, not more
    total_before_last = sum(size for _, size in sent[:-1])
    assert total_before_last / (sent[-1][0] - sent[0][0]) <= limits.rate + 1e-9


# ---------------------------------------------------------------------- in-flight slots
def test_given_every_slot_taken_when_another_batch_asks_then_it_waits_and_gets_one_once_a_slot_is_given_back():
    # Given a connection of 2 batches in flight, with two batches posted (tokens to spare)
    limits = SendLimits(rate=1000, max_in_flight=2)
    state = BucketState(tokens=10_000, updated_at=T0, slots={"one": T0 + 100, "two": T0 + 3})
    # When a third asks, Then it waits: until the first lease ends, or the recheck time if sooner
    assert decide(state, holder="three", letters=10, limits=limits, now=T0, lease_seconds=LEASE) == Wait(3.0, "slots")
    longer = BucketState(tokens=10_000, updated_at=T0, slots={"one": T0 + 100, "two": T0 + 90})
    assert decide(longer, holder="three", letters=10, limits=limits, now=T0, lease_seconds=LEASE) == Wait(
        shaping.SLOT_RECHECK_SECONDS, "slots")
    # And when one is acknowledged and gives its slot back, the third is admitted
    freed = shaping.release(longer, "one", now=T0 + 1)
    decision = decide(freed, holder="three", letters=10, limits=limits, now=T0 + 1, lease_seconds=LEASE)
    assert isinstance(decision, Admit) and set(decision.state.slots) == {"two", "three"}


def test_given_a_batch_holding_a_slot_when_it_retries_then_it_keeps_its_slot_and_renews_the_lease():
    # Given both slots taken, one by the batch that now retries
    limits = SendLimits(rate=1000, max_in_flight=2)
    state = BucketState(tokens=10_000, updated_at=T0, slots={"retrying": T0 + 5, "other": T0 + 50})
    # When it asks for its next attempt
    decision = decide(state, holder="retrying", letters=10, limits=limits, now=T0 + 4, lease_seconds=LEASE)
    # Then it is admitted without a second slot, and its lease runs from now
    assert isinstance(decision, Admit)
    assert decision.state.slots == {"retrying": T0 + 4 + LEASE, "other": T0 + 50}


def test_given_a_holder_that_vanished_when_its_lease_ends_then_its_slot_is_free_again():
    # Given a slot whose Lambda crashed and never gave it back
    limits = SendLimits(rate=1000, max_in_flight=1)
    state = BucketState(tokens=10_000, updated_at=T0, slots={"crashed": T0 + LEASE})
    assert isinstance(decide(state, holder="next", letters=1, limits=limits, now=T0 + 1, lease_seconds=LEASE), Wait)
    # When its lease has ended, Then another batch gets the slot and the stale one is gone
    decision = decide(state, holder="next", letters=1, limits=limits, now=T0 + LEASE, lease_seconds=LEASE)
    assert isinstance(decision, Admit) and set(decision.state.slots) == {"next"}


def test_given_neither_tokens_nor_a_slot_when_a_batch_asks_then_it_waits_for_the_later_of_the_two():
    limits = SendLimits(rate=5, max_in_flight=1)
    state = BucketState(tokens=0, updated_at=T0, slots={"other": T0 + 1})
    # When a batch of 50 asks, Then the 10 seconds for the tokens rule, not the slot's 1 second
    assert decide(state, holder="me", letters=50, limits=limits, now=T0, lease_seconds=LEASE) == Wait(10.0, "rate")


@pytest.mark.parametrize("letters, lease", [(0, LEASE), (1, 0)])
def test_given_a_nonsense_request_when_decided_then_it_is_refused(letters, lease):
    with pytest.raises(ValueError):
        decide(None, holder="x", letters=letters, limits=SendLimits(5, 1), now=T0, lease_seconds=lease)


def test_given_connections_sharing_an_oin_then_they_share_the_strictest_limits():
    config = _config()
    assert shaping.connection_limits(config, OIN) == SendLimits(rate=5, max_in_flight=2)
    assert shaping.connection_limits(config, SHARED_OIN) == SendLimits(rate=10, max_in_flight=3)
    with pytest.raises(ValueError):
        shaping.connection_limits(config, "00000001000000000000")


def test_given_the_tenant_configuration_then_concurrency_defaults_to_two_and_spreading_is_at_most_13_days():
    assert _config().connections["own"].max_concurrent_batches == 2
    assert _config().streams["ATONCE"].spread_publication_days is None
    assert _config(spread_publication_days=13).streams["SPREAD"].spread_publication_days == 13
    for wrong in (0, 14):
        with pytest.raises(ValidationError):
            _config(spread_publication_days=wrong)


# ---------------------------------------------------------------------- spreading PublicatieDatum
@pytest.mark.parametrize("count, days", [(10, 3), (7, 7), (2, 5), (0, 4), (1000, 13), (14, 13)])
def test_given_letters_and_days_when_spread_then_line_order_is_kept_and_days_differ_by_one_letter_at_most(count, days):
    indexes = shaping.spread_day_indexes(count, days)
    assert len(indexes) == count
    assert indexes == sorted(indexes)
    per_day = [indexes.count(day) for day in range(days)]
    assert max(per_day) - min(per_day) <= 1
    assert per_day == sorted(per_day, reverse=True)  # the earlier days take the extra letters


def test_given_ten_letters_over_three_days_then_four_three_three():
    assert shaping.spread_day_indexes(10, 3) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("local_now, first", [
    (datetime(2027, 2, 26, 7, 59, tzinfo=AMS), datetime(2027, 2, 26, 8, 0, tzinfo=AMS)),
    (datetime(2027, 2, 26, 8, 0, tzinfo=AMS), datetime(2027, 2, 27, 8, 0, tzinfo=AMS)),
    (datetime(2027, 2, 26, 23, 30, tzinfo=AMS), datetime(2027, 2, 27, 8, 0, tzinfo=AMS)),
])
def test_given_the_moment_a_file_is_taken_then_the_first_publication_is_the_next_0800_in_amsterdam(local_now, first):
    slots = shaping.spread_slots(local_now.astimezone(UTC), 3)
    assert slots[0] == first
    assert all(slot.tzinfo is not None and slot.utcoffset() == timedelta(0) for slot in slots)


def test_given_a_spread_over_the_change_to_summer_time_then_every_day_is_at_0800_amsterdam_time():
    # Given a file taken on Friday 26 March 2027; summer time starts on Sunday 28 March
    slots = shaping.spread_slots(datetime(2027, 3, 26, 12, 0, tzinfo=AMS), 4)
    # Then each publication is at 08:00 local time, which is 07:00 UTC before the change and 06:00 after
    assert [slot.astimezone(AMS).strftime("%d %H:%M") for slot in slots] == ["27 08:00", "28 08:00", "29 08:00", "30 08:00"]
    assert [slot.hour for slot in slots] == [7, 6, 6, 6]


@pytest.mark.parametrize("hour", [0, 7, 8, 12, 23])
def test_given_13_days_when_spread_at_any_hour_then_the_last_day_is_within_logius_13_days(hour):
    now = datetime(2027, 10, 20, hour, 30, tzinfo=AMS).astimezone(UTC)
    slots = shaping.spread_slots(now, 13)
    assert len({slot.astimezone(AMS).date() for slot in slots}) == 13
    assert now < slots[0] and slots[-1] <= now + PUBLISH_MAX_AHEAD


def test_given_13_days_over_the_change_to_winter_time_when_taken_after_0800_then_the_last_day_stays_within_13_days():
    # Given a file taken on 20 October 2027 at 08:30 (winter time starts on 31 October)
    now = datetime(2027, 10, 20, 8, 30, tzinfo=AMS).astimezone(UTC)
    slots = shaping.spread_slots(now, 13)
    # Then the first 12 days publish at 08:00, and the 13th, whose 08:00 would lie an hour past Logius'
    # 13 days, at the latest moment allowed
    assert all(slot.astimezone(AMS).strftime("%H:%M") == "08:00" for slot in slots[:12])
    assert slots[-1] == now + PUBLISH_MAX_AHEAD
    assert slots[-1].astimezone(AMS).strftime("%m-%d %H:%M") == "11-02 07:30"


def _letter(line: int, stream: str = "SPREAD", **extra) -> Letter:
    return Letter(line=line, reference=f"ref-{line}", sender="org-a", stream=stream, bsn="999990019",
                  subject="Uw aanslag", text="Geachte heer, mevrouw", **extra)


def test_given_a_stream_that_spreads_when_a_file_is_taken_then_its_letters_get_days_in_line_order_and_others_keep_theirs():
    # Given a stream spreading over 3 days and a file taken on 26 February 2027 at 09:00
    config = _config(spread_publication_days=3)
    now = datetime(2027, 2, 26, 9, 0, tzinfo=AMS).astimezone(UTC)
    own = datetime(2027, 3, 5, 12, 0, tzinfo=AMS).astimezone(UTC)
    letters = [_letter(4), _letter(1), _letter(2, publish_at=own), _letter(3, stream="ATONCE"), _letter(5), _letter(6),
               _letter(7)]
    # When the publication dates are spread
    spread = shaping.spread_publication(letters, config, now=now)
    # Then the order of the letters is kept, and the five spread letters get 27, 27, 28, 28, 1 March at 08:00 by line
    assert [letter.line for letter in spread] == [4, 1, 2, 3, 5, 6, 7]
    days = {letter.line: letter.publish_at.astimezone(AMS).strftime("%m-%d %H:%M") if letter.publish_at else None
            for letter in spread}
    assert days == {1: "02-27 08:00", 4: "02-27 08:00", 5: "02-28 08:00", 6: "02-28 08:00", 7: "03-01 08:00",
                    2: "03-05 12:00", 3: None}
    # And a letter with its own publish_at keeps it; another stream's letter still publishes at once
    assert next(letter for letter in spread if letter.line == 2).publish_at == own
    # And the letters themselves are otherwise unchanged
    assert [(l.reference, l.bsn, l.text) for l in spread] == [(l.reference, l.bsn, l.text) for l in letters]


def test_given_a_letter_whose_deadline_comes_before_its_day_then_it_is_published_on_the_last_day_before_the_deadline():
    # Given a stream spreading over 5 days, taken on 26 February 2027 at 09:00 (days 27 Feb - 3 Mar)
    config = _config(spread_publication_days=5)
    now = datetime(2027, 2, 26, 9, 0, tzinfo=AMS).astimezone(UTC)
    deadline = datetime(2027, 2, 28, 0, 0, tzinfo=AMS).astimezone(UTC)
    too_soon = datetime(2027, 2, 26, 17, 0, tzinfo=AMS).astimezone(UTC)
    letters = [_letter(n) for n in range(1, 5)] + [_letter(5, act_before=deadline), _letter(6, act_before=too_soon)]
    # When spread
    spread = {letter.line: letter.publish_at for letter in shaping.spread_publication(letters, config, now=now)}
    # Then the letter due on 28 February publishes that day rather than on its own later day
    assert spread[5].astimezone(AMS) == datetime(2027, 2, 28, 8, 0, tzinfo=AMS)
    # And a letter due before the first spread day publishes at once
    assert spread[6] is None
    # And the others keep the even spread
    assert [spread[n].astimezone(AMS).day for n in range(1, 5)] == [27, 27, 28, 1]


def test_given_no_stream_that_spreads_then_every_letter_is_returned_as_it_was():
    config = _config()
    letters = [_letter(1), _letter(2, stream="ATONCE")]
    assert shaping.spread_publication(letters, config, now=datetime(2027, 2, 26, 9, tzinfo=UTC)) == letters


def test_given_a_naive_moment_or_too_many_days_then_spreading_refuses():
    with pytest.raises(ValueError):
        shaping.spread_slots(datetime(2027, 2, 26, 9), 3)
    with pytest.raises(ValueError):
        shaping.spread_slots(datetime(2027, 2, 26, 9, tzinfo=UTC), 14)
