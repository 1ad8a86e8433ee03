"""Keep BSNs out of logs, reports and error messages."""
from __future__ import annotations

import re

from bbconnect.letters import mask_bsn

_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


def scrub(text: str) -> str:
    """Mask every run of exactly nine digits in free text (a BSN-shaped number)."""
    return _NINE_DIGITS.sub(lambda m: mask_bsn(m.group(0)), text)
