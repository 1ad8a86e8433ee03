"""Splitting accepted letters into GLOBE batches, and the ids that make resends safe."""
from __future__ import annotations

import uuid

import pytest

from bbconnect.chunking import ChunkKey, batches_of, bericht_id, globe_batch_id, plan_chunks


def _key(letter):
    return ChunkKey(letter["sender"], letter["stream"], "conn")


def test_given_2500_letters_of_one_sender_and_stream_when_planned_then_three_chunks_of_at_most_1000():
    letters = [{"sender": "a", "stream": "S", "n": n} for n in range(2500)]
    chunks = plan_chunks("batch", letters, _key)
    assert [len(c.letters) for c in chunks] == [1000, 1000, 500]
    assert [c.index for c in chunks] == [0, 1, 2]


def test_given_two_senders_interleaved_when_planned_then_each_chunk_holds_one_sender_and_stream_in_input_order():
    letters = [{"sender": "ab"[n % 2], "stream": "S", "n": n} for n in range(10)]
    chunks = plan_chunks("batch", letters, _key, max_letters=3)
    for chunk in chunks:
        assert len({(l["sender"], l["stream"]) for l in chunk.letters}) == 1
        assert [l["n"] for l in chunk.letters] == sorted(l["n"] for l in chunk.letters)
    assert sum(len(c.letters) for c in chunks) == 10


def test_given_letters_near_the_size_limit_when_planned_then_a_chunk_never_exceeds_the_bytes():
    letters = [{"sender": "a", "stream": "S"} for _ in range(10)]
    chunks = plan_chunks("batch", letters, _key, size_of=lambda l: 40, max_bytes=100)
    assert [len(c.letters) for c in chunks] == [2, 2, 2, 2, 2]


def test_given_the_same_batch_when_planned_twice_then_the_globe_batch_ids_are_the_same():
    letters = [{"sender": "a", "stream": "S"} for _ in range(5)]
    first = [c.globe_batch_id for c in plan_chunks("batch-1", letters, _key, max_letters=2)]
    again = [c.globe_batch_id for c in plan_chunks("batch-1", letters, _key, max_letters=2)]
    other = [c.globe_batch_id for c in plan_chunks("batch-2", letters, _key, max_letters=2)]
    assert first == again and not set(first) & set(other)
    assert all(uuid.UUID(i) for i in first)


def test_given_a_reference_then_its_bericht_id_is_stable_and_tenant_scoped():
    assert bericht_id("t1", "ref-1") == bericht_id("t1", "ref-1")
    assert bericht_id("t1", "ref-1") != bericht_id("t2", "ref-1")
    assert globe_batch_id("b", 0) != globe_batch_id("b", 1)


def test_given_a_chunk_limit_above_logius_maximum_then_planning_refuses():
    with pytest.raises(ValueError, match="1..1000"):
        plan_chunks("b", [], _key, max_letters=1001)


def test_given_601_bsns_when_cut_for_wus_then_calls_of_at_most_250():
    assert [len(part) for part in batches_of(list(range(601)), 250)] == [250, 250, 101]
