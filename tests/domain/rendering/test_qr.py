"""The EPC QR code's fast mask choice: segno's own symbol, mask by mask the same penalty scores."""
from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
import segno
from segno import encoder, helpers

from bbconnect.payment import Payment
from bbconnect.rendering.qr import epc_matrix, mask_penalties, qr_matrix


def _segno_scores(data: bytes, monkeypatch) -> list[int]:
    """segno's own penalty score of each mask (ISO/IEC 18004 7.8.3), read while it encodes ``data``."""
    scores: list[int] = []
    original = encoder.find_and_apply_best_mask

    def spy(matrix, width, height, proposed_mask=None):
        function = encoder.make_matrix(width, height)
        encoder.add_finder_patterns(function, width, height)
        encoder.add_alignment_patterns(function, width, height)
        function[-8][8] = 0x1
        for pattern in encoder.get_data_mask_functions(False):
            masked = [row[:] for row in matrix]
            encoder.apply_mask(masked, pattern, width, height, lambda i, j: function[i][j] > 1)
            scores.append(encoder.evaluate_mask(masked, width, height))
        return original(matrix, width, height, proposed_mask)

    monkeypatch.setattr(encoder, "find_and_apply_best_mask", spy)
    segno.make_qr(data, error="m", boost_error=False)
    monkeypatch.setattr(encoder, "find_and_apply_best_mask", original)
    return scores


def _payloads(count: int) -> list[bytes]:
    rng = random.Random(20270226)
    payloads = []
    for number in range(count):
        name = "".join(rng.choice("abcdefghijklmnop ÉÖßĳ-") for _ in range(rng.randint(1, 70))).strip() or "x"
        amount = Decimal(rng.randint(1, 10 ** 9)) / 100
        if number % 2:
            text = ("Aanslag 2027 " * rng.randint(1, 10)).strip()[:140]
            payloads.append(helpers._make_epc_qr_data(name, "NL86BNGH9963334018", amount, text, None, None, None, None))
        else:
            payloads.append(helpers._make_epc_qr_data(name, "NL86BNGH9963334018", amount, None, "5000056789012345",
                                                      None, None, None))
    return payloads


@pytest.mark.parametrize("data", _payloads(40))
def test_given_an_epc_payload_then_each_masks_penalty_is_segnos_and_the_symbol_is_segnos(data, monkeypatch):
    # Given a payload and segno's own scores of the eight masks
    expected = _segno_scores(data, monkeypatch)
    # When the fast path scores the masks (starting from a symbol made with any mask)
    code = encoder.encode(data, error="m", mask=random.Random(len(data)).randint(0, 7), boost_error=False, micro=False)
    # Then every score is segno's, and the finished symbol is the one segno makes
    assert mask_penalties(code) == expected
    assert [bytes(row) for row in qr_matrix(data)] == [bytes(row) for row in segno.make_qr(data, error="m", boost_error=False).matrix]


def test_given_a_payment_then_the_letters_qr_code_is_segnos_epc_qr_code():
    payment = Payment(creditor="Gemeente Leidschendam-Voorburg", iban="NL86BNGH9963334018", amount=Decimal("766.51"),
                      due_date=date(2027, 4, 30), kenmerk="5000056789012345")
    assert [bytes(row) for row in epc_matrix(payment)] == [bytes(row) for row in payment.epc_qr().matrix]
