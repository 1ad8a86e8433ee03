"""Attachments that are not what their name says: a text file called x.pdf, a zip, a truncated or an
encrypted PDF, and files built to make the pass-through check slow or hungry. Each is refused with
the reason, quickly, and never with anything but a PassthroughError."""
from __future__ import annotations

import time

import pytest

from bbconnect.rendering.passthrough import PassthroughError, check_passthrough

from .corpus import PDF_CASES, PdfCase

LIMIT = 500_000  # what Logius takes per letter, before the letter itself takes its share


@pytest.mark.parametrize("case", PDF_CASES, ids=lambda case: case.id)
def test_given_a_bad_attachment_when_checked_then_it_is_refused_with_the_reason_within_a_second(case: PdfCase):
    # Given a "PDF" a tenant dropped next to its batch file
    data = case.build()
    # When the render stage checks it
    started = time.perf_counter()
    with pytest.raises(PassthroughError) as caught:
        check_passthrough(data, name="bijlage.pdf", max_bytes=LIMIT)
    elapsed = time.perf_counter() - started
    # Then it is refused, naming the file and the reason
    assert str(caught.value).startswith("attachment 'bijlage.pdf' ")
    assert case.fragment in str(caught.value), str(caught.value)
    # And the check stays bounded whatever the bytes (a backtracking pattern once took 90 s here)
    assert elapsed < 3.0, f"{case.id} took {elapsed:.1f} s"


def test_given_a_good_pdf_then_it_passes():
    from .corpus import _pdf

    assert check_passthrough(_pdf(2), name="folder.pdf", max_bytes=LIMIT).pages == 2
