"""The independent checkers the tests run next to the project's own (:mod:`pdfa.checker`).

* **page** (PyPI ``page-validation``): a PDF/A and PDF/UA validator in Rust that passes veraPDF's
  corpus tests; profiles ``2a``, ``2b``, ``ua1``. veraPDF itself cannot be installed here.
* **outloud**: a PDF/UA-1 and WCAG 2.2 checker with semantic checks a validator does not make
  (tables that look shredded, URLs printed without a link, reading order against painting order).

Both report findings; a test asserts there are none (outloud: no errors and no warnings).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["outloud_findings", "page_findings"]


def page_findings(pdf: bytes, profile: str) -> list[str]:
    """``page``'s failed rules for ``profile`` ("2a", "2b", "ua1"), as "RULE: message" lines."""
    import page

    report = page.validate_pdf_bytes(pdf, profile=profile)
    found = [f"{failure.rule_id}: {failure.message}" for failure in report.failures]
    if not report.is_compliant and not found:
        found.append(f"not compliant with {profile} (no rule named)")
    return found


def outloud_findings(pdf: bytes) -> list[str]:
    """outloud's errors and warnings, as "RULE (severity): message" lines."""
    import outloud

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "letter.pdf"
        path.write_bytes(pdf)
        result = outloud.check(str(path))
    if result.error:
        return [f"outloud could not read the file: {result.error}"]
    return [f"{finding.rule} ({finding.severity}): {finding.message}"
            for finding in result.findings if finding.severity in ("error", "warning")]
