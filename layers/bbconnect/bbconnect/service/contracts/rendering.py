"""Render: its answer (`$.render.rendered`) and `rendered.json`."""
from __future__ import annotations

from pydantic import Field

from bbconnect.service.contracts import Contract


class RenderResult(Contract):
    digital: int  # `$.render.rendered.digital`: letters in the GLOBE batch (0: nothing to send)
    failed: int


class RenderedFile(Contract):
    """`rendered.json`: the BerichtIDs in the GLOBE batch, the letters set aside (reference -> why), and
    the SHA-256 of every PDF per BerichtID, in attachment order (for the proof of dispatch)."""

    included: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    sha256: dict[str, list[str]] = Field(default_factory=dict)


class RenderState(Contract):
    rendered: RenderResult | None = None
