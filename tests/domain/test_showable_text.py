"""Intake accepts exactly the text a letter can show: the checked set is the one the letter fonts
cover (`rendering.fonts.letter_characters`), so nothing rejected could have rendered and nothing
accepted fails to render."""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bbconnect import letters as L
from bbconnect.batchfile import RawRow
from bbconnect.letters import Letter, Rejection
from bbconnect.rendering.fonts import LAYOUT_CHARACTERS, FontSet, UnsupportedCharacters, letter_characters
from bbconnect.rendering.letter import LetterRenderer
from bbconnect.service.documents import letter_document
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import unsupported_character, validate_row

NOW = datetime(2027, 2, 26, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))


@pytest.fixture(scope="module")
def tenant(repo_root):
    path = repo_root / "config" / "tenants" / "gemeente-lv.json"
    return load_tenant_config(path.read_bytes(), source=str(path))


@pytest.fixture(scope="module")
def renderer():
    return LetterRenderer()


def _row(**changes) -> RawRow:
    fields = {"reference": "tekens-1", "sender": "lv", "stream": "AANSLAG", "bsn": "999990019", "subject": "Uw aanslag",
              "text": "Geachte heer, mevrouw,", "template": "generic",
              "address": {"name": "A. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                          "city": "Leidschendam"}}
    fields.update(changes)
    return RawRow(line=2, fields=fields)


def _render(letter: Letter, tenant, renderer) -> bytes:
    data = json.loads(letter.model_dump_json())
    stream = tenant.streams[letter.stream]
    return renderer.render(letter_document(data, tenant.organisations[letter.sender], stream, variant="paper", logos=False))


def _shown_characters() -> list[str]:
    """Every character the fonts cover that a letter's text may hold (controls are refused before)."""
    return [chr(cp) for cp in sorted(letter_characters()) if unicodedata.category(chr(cp)) not in ("Cc", "Cs")]


def test_given_the_font_files_then_the_checked_set_is_what_the_renderer_draws():
    assert letter_characters() == FontSet().full_code_points() - LAYOUT_CHARACTERS
    assert {ord(c) for c in "aZ09 €ĳĲëé—“”…"} <= letter_characters()


@pytest.mark.parametrize("part", range(3))
def test_given_text_of_characters_the_fonts_cover_when_taken_in_then_it_is_accepted_and_renders(tenant, renderer, part):
    # Given a letter whose text holds a third of every character the letter fonts cover
    shown = _shown_characters()[part::3]
    words = [" " + "".join(shown[i:i + 40]) for i in range(0, len(shown), 40)]
    text = "Geachte heer, mevrouw,\n\n" + "".join(words)
    # When it is taken in
    letter = validate_row(_row(text=text, subject="Tekens " + "".join(shown[:40])), tenant, now=NOW)
    # Then it is accepted, and it renders
    assert isinstance(letter, Letter), letter
    assert _render(letter, tenant, renderer).startswith(b"%PDF-")


def _not_covered(count: int) -> list[str]:
    """Assigned characters the fonts lack, spread over the code space (CJK, emoji, scripts...)."""
    covered = letter_characters()
    found = [chr(cp) for cp in range(0x20, 0x30000)
             if cp not in covered and unicodedata.category(chr(cp)) not in ("Cc", "Cs", "Cn", "Co")]
    step = max(1, len(found) // count)
    return found[::step][:count]


@pytest.mark.parametrize("character", _not_covered(24), ids=lambda c: f"U+{ord(c):04X}")
def test_given_a_character_the_fonts_lack_when_taken_in_then_it_is_rejected_and_could_not_have_rendered(
        tenant, renderer, character):
    # Given a subject with a character the letter fonts have no glyph for
    subject = f"Uw aanslag {character}"
    # When the row is taken in
    rejected = validate_row(_row(subject=subject), tenant, now=NOW)
    # Then it is rejected, naming the character and the field
    assert isinstance(rejected, Rejection)
    assert rejected.code == L.UNSUPPORTED_CHARACTER
    assert rejected.reason.startswith(f"subject contains U+{ord(character):04X} ")
    # And the renderer could not have drawn it
    accepted_twin = validate_row(_row(subject="Uw aanslag"), tenant, now=NOW)
    with pytest.raises(UnsupportedCharacters):
        _render(accepted_twin.model_copy(update={"subject": subject}), tenant, renderer)


@pytest.mark.parametrize(("field", "changes"), [
    ("text", {"text": "Geachte heer,\n\nUw aanslag \U0001F389"}),
    ("address.city", {"address": {"name": "A", "street": "S", "house_number": "1", "postcode": "2260 BA", "city": "\u4e2d"}}),
    ("reference", {"reference": "tekens-\U0001F4B0"}),
])
def test_given_a_character_the_fonts_lack_in_any_shown_field_then_the_row_is_rejected_naming_that_field(tenant, field, changes):
    rejected = validate_row(_row(**changes), tenant, now=NOW)
    assert rejected.code == L.UNSUPPORTED_CHARACTER and rejected.reason.startswith(f"{field} contains U+")


def test_given_line_breaks_and_tabs_in_the_text_then_they_are_laid_out_not_refused():
    assert unsupported_character("a\tb\r\nc", allow_line_breaks=True) is None
    assert (unsupported_character("a\tb") or "").startswith("U+0009")
