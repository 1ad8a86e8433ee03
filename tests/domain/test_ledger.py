"""The ledger: a letter's record and its chunk's record composed into one status and history."""
from __future__ import annotations

from bbconnect.ledger import chunk_key, compose, compose_all, decode_outcome, encode_outcome

TENANT, BATCH = "gemeente-lv", "b-1"


def _letter(reference: str, *, line: int = 1, chunk: int = 0, **extra) -> dict:
    return {"letter_key": f"{TENANT}#{reference}", "kind": "letter", "tenant": TENANT, "reference": reference,
            "batch_id": BATCH, "line": line, "chunk": chunk, "bericht_id": f"id-{reference}", "status": "ACCEPTED",
            "history": [{"at": "2027-02-26T08:00:00.000+00:00", "status": "ACCEPTED", "detail": f"batch {BATCH} line {line}"}],
            **extra}


def _chunk(**extra) -> dict:
    return {"letter_key": chunk_key(TENANT, BATCH, 0), "kind": "chunk", "tenant": TENANT, "batch_id": BATCH, "chunk": 0,
            "globe_batch_id": "g-0", "references": ["r-digital", "r-paper", "r-aside"], "stage": "ACCEPTED", "history": [], **extra}


ROUTED = {"routes": "dpd", "route_source": "wus",  # in the order of the chunk's references
          "history": [{"at": "2027-02-26T08:01:00.000+00:00", "status": "ROUTED"},
                      {"at": "2027-02-26T08:02:00.000+00:00", "status": "RENDERED", "detail": "in GLOBE batch g-0"},
                      {"at": "2027-02-26T08:03:00.000+00:00", "status": "SENT", "detail": "acknowledged"}],
          "set_aside": ["r-aside"], "stage": "SENT"}


def test_given_outcomes_with_long_repeated_reasons_when_encoded_then_each_reason_is_stored_once_and_decodes_back():
    # Given 1000 letters, most failed for the same long reason, one with a paper copy
    reason = "Logius: TechnischProbleem (stadium StoreMessage) " * 4
    entries = [{"reference": f"r-{i}", "status": "FAILED", "reason": reason, "code": "TechnischProbleem", "paper": False}
               for i in range(999)] + [{"reference": "r-both", "status": "DELIVERED", "reason": None, "code": "Verwerkt", "paper": True}]
    # When encoded
    codes, texts = encode_outcome(entries, [entry["reference"] for entry in entries])
    # Then the reason is stored once, and every letter decodes to what it was
    assert texts.count(reason) == 1 and len(texts) == 3
    assert decode_outcome(codes[7], texts) == {"status": "FAILED", "reason": reason, "code": "TechnischProbleem", "paper_copy": False}
    assert decode_outcome(codes[-1], texts) == {"status": "DELIVERED", "reason": None, "code": "Verwerkt", "paper_copy": True}
    assert sum(len(code) for code in codes) + len(reason) < 12_000


def test_given_a_sent_chunk_when_composed_then_digital_letters_are_sent_paper_ones_routed_and_set_aside_ones_rendered_no_further():
    # Given a chunk that was routed, rendered (one letter set aside) and sent
    chunk = _chunk(**ROUTED)
    # When its letters are composed
    digital, paper, aside = (compose(_letter(reference), chunk) for reference in ("r-digital", "r-paper", "r-aside"))
    # Then each letter has the chunk's steps that concern it, in time order
    assert digital["status"] == "SENT" and [e["status"] for e in digital["history"]] == ["ACCEPTED", "ROUTED", "RENDERED", "SENT"]
    assert digital["route"] == "digital" and digital["route_source"] == "wus" and digital["globe_batch_id"] == "g-0"
    assert paper["status"] == "ROUTED" and paper["route"] == "paper"
    assert paper["history"][1]["detail"] == "route paper (decided by wus)"
    assert aside["status"] == "ROUTED"


def test_given_a_settled_chunk_when_composed_then_each_letter_has_its_own_final_state_last():
    # Given the chunk's outcome: one delivered, one on paper, one failed with a reason
    codes, texts = encode_outcome([
        {"reference": "r-aside", "status": "FAILED", "reason": "could not be rendered: bad logo"},
        {"reference": "r-digital", "status": "DELIVERED", "code": "Verwerkt"},
        {"reference": "r-paper", "status": "PAPER", "paper": True},
    ], ["r-digital", "r-paper", "r-aside"])
    chunk = _chunk(**ROUTED, outcome=codes, texts=texts, settled_at="2027-02-26T09:00:00.000+00:00")
    # When composed
    views = {reference: compose(_letter(reference), chunk) for reference in ("r-digital", "r-paper", "r-aside")}
    # Then the final state is the last step of each history, with its reason
    assert {reference: view["status"] for reference, view in views.items()} == {"r-digital": "DELIVERED", "r-paper": "PAPER", "r-aside": "FAILED"}
    assert views["r-aside"]["reason"] == "could not be rendered: bad logo"
    assert views["r-paper"]["paper_copy"] is True and views["r-digital"]["code"] == "Verwerkt"
    assert all(view["history"][-1]["status"] == view["status"] for view in views.values())


def test_given_a_letter_settled_late_when_composed_then_its_own_record_wins_over_the_chunks_failure():
    # Given a chunk that failed the letter for want of a report, and the letter settled later as delivered
    codes, texts = encode_outcome([{"reference": "r-digital", "status": "FAILED", "reason": "no processing report (GLOBE-R-BV-Result) arrived in time"}],
                                  ["r-digital", "r-paper", "r-aside"])
    chunk = _chunk(**ROUTED, outcome=codes, texts=texts, settled_at="2027-02-26T09:00:00.000+00:00")
    letter = _letter("r-digital", status="DELIVERED", settled=True)
    letter["history"].append({"at": "2027-02-27T10:00:00.000+00:00", "status": "DELIVERED", "detail": "late processing report: Verwerkt",
                              "settled": True})
    # When composed
    view = compose(letter, chunk)
    # Then it is DELIVERED, and its history shows the failure before the late delivery
    assert view["status"] == "DELIVERED" and view["reason"] is None
    assert [e["status"] for e in view["history"]][-2:] == ["FAILED", "DELIVERED"]


def test_given_a_letter_moved_to_a_resend_when_composed_with_its_old_chunk_then_the_old_chunk_is_not_its_status():
    # Given a letter reopened into batch b-2, and the old chunk of b-1 that failed it
    codes, texts = encode_outcome([{"reference": "r-digital", "status": "FAILED", "reason": "Logius: X"}], ["r-digital", "r-paper", "r-aside"])
    old_chunk = _chunk(**ROUTED, outcome=codes, texts=texts, settled_at="2027-02-26T09:00:00.000+00:00")
    letter = _letter("r-digital", batch_id="b-2")
    # When composed with the old chunk (as a scan would find it)
    view = compose(letter, old_chunk)
    # Then the old outcome does not apply: the letter waits in its new batch
    assert view["status"] == "ACCEPTED"


def test_given_a_scan_of_letters_chunks_and_rejected_rows_when_composed_then_every_row_appears_once():
    rejected = {"letter_key": f"{TENANT}#rejected#{BATCH}#4", "kind": "rejected", "tenant": TENANT, "reference": "",
                "batch_id": BATCH, "line": 4, "status": "REJECTED", "reason": "INVALID_BSN: 11-test", "history": []}
    items = [_chunk(**ROUTED), _letter("r-digital", line=1), _letter("r-paper", line=2), _letter("r-aside", line=3), rejected]
    views = compose_all(items)
    assert sorted((view["line"], view["status"]) for view in views) == [(1, "SENT"), (2, "ROUTED"), (3, "ROUTED"), (4, "REJECTED")]
