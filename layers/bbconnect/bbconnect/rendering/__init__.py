"""Letter rendering: ``LetterDocument`` -> PDF/A-2u bytes (fpdf2, embedded DejaVu Sans).

The names below are loaded on first use, so that ``python -m bbconnect.rendering.letter`` (the
timing demo) runs without importing the module twice.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fonts import FONT_DIR_ENV, FontSet, FontsNotFound, UnsupportedCharacters
    from .letter import (
        Assessment,
        LetterDocument,
        LetterPdf,
        LetterRenderer,
        SenderBlock,
        TaxLine,
        default_renderer,
        format_euro,
        go_digital_invitation,
        render_letter,
    )

_EXPORTS = {
    "FONT_DIR_ENV": ".fonts",
    "FontSet": ".fonts",
    "FontsNotFound": ".fonts",
    "UnsupportedCharacters": ".fonts",
    "Assessment": ".letter",
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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
