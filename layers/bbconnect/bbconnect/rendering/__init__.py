"""Letter rendering: ``LetterDocument`` -> PDF/A-2a and PDF/UA-1 bytes (fpdf2, embedded DejaVu Sans); templates
``generic``, ``aanslag`` and ``waterschap`` with the payment block; checks for pass-through PDFs.

The names below are loaded on first use, so that ``python -m bbconnect.rendering.letter`` (the
timing demo) runs without importing the module twice.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import texts  # noqa: F401 - a submodule typing tools may name through the package
    from .fonts import (
        FIXED_SET,
        FONT_DIR_ENV,
        FontSet,
        FontsNotFound,
        UnsupportedCharacters,
        covered_codepoints,
        unsupported_characters,
    )
    from .letter import (
        TEMPLATES,
        Assessment,
        LetterDocument,
        LetterPdf,
        LetterRenderer,
        Logo,
        SenderBlock,
        TaxLine,
        default_renderer,
        format_euro,
        go_digital_invitation,
        render_letter,
        sample_assessment_letter,
    )
    from .passthrough import PassthroughError, PdfFacts, check_passthrough, count_pages

_EXPORTS = {
    "FIXED_SET": ".fonts",
    "FONT_DIR_ENV": ".fonts",
    "FontSet": ".fonts",
    "FontsNotFound": ".fonts",
    "UnsupportedCharacters": ".fonts",
    "covered_codepoints": ".fonts",
    "unsupported_characters": ".fonts",
    "TEMPLATES": ".letter",
    "Assessment": ".letter",
    "Logo": ".letter",
    "sample_assessment_letter": ".letter",
    "PassthroughError": ".passthrough",
    "PdfFacts": ".passthrough",
    "check_passthrough": ".passthrough",
    "count_pages": ".passthrough",
    "LetterDocument": ".letter",
    "LetterPdf": ".letter",
    "LetterRenderer": ".letter",
    "SenderBlock": ".letter",
    "TaxLine": ".letter",
    "default_renderer": ".letter",
    "format_euro": ".letter",
    "go_digital_invitation": ".letter",
    "render_letter": ".letter",
}

__all__ = [  # the names of _EXPORTS, spelled out so tools see what the package offers
    "FIXED_SET",
    "FONT_DIR_ENV",
    "TEMPLATES",
    "Assessment",
    "FontSet",
    "FontsNotFound",
    "LetterDocument",
    "LetterPdf",
    "LetterRenderer",
    "Logo",
    "PassthroughError",
    "PdfFacts",
    "SenderBlock",
    "TaxLine",
    "UnsupportedCharacters",
    "check_passthrough",
    "count_pages",
    "covered_codepoints",
    "default_renderer",
    "format_euro",
    "go_digital_invitation",
    "render_letter",
    "sample_assessment_letter",
    "unsupported_characters",
]


def __getattr__(name: str) -> Any:
    if name == "texts":
        return importlib.import_module(".texts", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
