"""Every template in every variant a tenant sends is PDF/A-2a and PDF/UA-1, for the project's checker
(``tests/pdfa/checker.py``) and for two independent ones (page, outloud): digital, paper, a refund,
a zero amount, a long letter over several pages, and one with names in Polish, Turkish and Czech.

The letters are made the way the pipeline makes them: a batch row and the tenant configuration in
``config/tenants`` through ``service.documents.letter_document``, with the tenants' own logos.
"""
from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest

from bbconnect.rendering.letter import LetterRenderer
from bbconnect.service.documents import LogoSource, directory_reader, letter_document
from bbconnect.tenants import load_tenant_config
from pdfa.checker import check_pdfua1, format_findings
from pdfa.independent import outloud_findings, page_findings

CONFIG = Path(__file__).resolve().parents[3] / "config" / "tenants"
LOGOS = LogoSource(directory_reader(CONFIG))


def _tenant(name: str):
    return load_tenant_config((CONFIG / f"{name}.json").read_bytes(), source=name)


def _row(template: str, *, total: Decimal = Decimal("766.51"), lines: int = 3, names: bool = False) -> dict:
    address = {"name": "F.I. de Gaardebrugge", "street": "Zilverschoonlaan", "house_number": "180",
               "postcode": "2273 RA", "city": "Voorburg"}
    if names:
        address = {**address, "name": "Mevrouw Ł. Kővári-Şahin", "street": "Čapkova"}
    row = {"reference": f"t-{template}-{lines}-{total}", "subject": "Aanslag belastingen 2027",
           "text": "Geachte heer, mevrouw,\n\nIn de bijlage vindt u het aanslagbiljet. Meer leest u op www.lv.nl/belastingen .",
           "address": address}
    if template == "generic":
        body = ["Geachte heer, mevrouw,", "U heeft een herinnering nodig. Lees meer op www.duinwijk.example/betalen ."]
        body += [f"Alinea {n}: " + "Dit is een lange brief met veel tekst over uw situatie. " * 6 for n in range(lines)]
        if names:
            body.append("Met vriendelijke groet, Łukasz Şahin en Jiří Čapek")
        row.update(subject="Herinnering betaling", text="\n\n".join(body))
        return row
    kinds = ("OZBE", "AFV", "RIOG", "HOND", "BESE") if template == "aanslag" else ("WSI", "ZUI", "WSE")
    data_lines = []
    for n in range(lines):
        code = kinds[n % len(kinds)]
        data_lines.append({"code": code, "description": f"{'Čapkova' if names else 'Zilverschoonlaan'} {n + 1} Voorburg",
                           "period": "2027", "basis": "226000" if code in ("OZBE", "BESE", "WSE") else "1",
                           "amount": "0.00", **({"heffing": "Watersysteemheffing ingezetenen"} if code == "WSI" else {})})
    share = (total / len(data_lines)).quantize(Decimal("0.01"))
    for line in data_lines:
        line["amount"] = str(share)
    data_lines[-1]["amount"] = str(total - share * (len(data_lines) - 1))
    row["data"] = {"assessment_number": "2027000042", "tax_year": 2027, "dagtekening": "2027-02-26",
                   "vervaldag": "2027-04-30", "waardepeildatum": "2026-01-01", "lines": data_lines,
                   "total": str(total), "betalingskenmerk": None}
    row["subject"] = "Aanslag gemeentelijke belastingen 2027" if template == "aanslag" else "Aanslag waterschapsbelastingen 2027"
    return row


SOURCES = {
    "aanslag": ("gemeente-lv", "lv", "AANSLAG"),
    "waterschap": ("saas-vendor", "waterschap-lage-landen", "WSBELAST"),
    "generic": ("saas-vendor", "duinwijk", "HERINNER"),
}
KINDS = {
    "digital": dict(variant="digital"),
    "paper": dict(variant="paper"),
    "refund": dict(variant="paper", total=Decimal("-188.40")),
    "zero": dict(variant="digital", total=Decimal("0.00")),
    "long": dict(variant="paper", lines=40),
    "diacritics": dict(variant="digital", names=True),
}
CASES = [(template, kind) for template in SOURCES for kind in KINDS
         if not (template == "generic" and kind in ("refund", "zero"))]


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


def make(template: str, kind: str):
    tenant, sender, stream = SOURCES[template]
    config = _tenant(tenant)
    options = dict(KINDS[kind])
    variant = options.pop("variant")
    row = _row(template, **options)
    if template == "generic":
        row["data"] = {"payment": {"amount": "45.00", "due_date": "2027-04-30", "betalingskenmerk": "5000056789012345"}}
    return letter_document(copy.deepcopy(row), config.organisations[sender], config.streams[stream],
                           variant=variant, logos=LOGOS)


@pytest.mark.parametrize(("template", "kind"), CASES, ids=[f"{t}-{k}" for t, k in CASES])
def test_given_each_template_and_variant_when_rendered_then_every_checker_finds_nothing(renderer, template, kind):
    # Given the letter as the pipeline makes it, When rendered
    data = renderer.render(make(template, kind))
    # Then the project's checker finds nothing against PDF/A-2a and PDF/UA-1
    findings = check_pdfua1(data)
    assert findings == [], format_findings(findings)
    # And neither do the independent ones: page for PDF/A-2a and PDF/UA-1, outloud for PDF/UA-1/WCAG
    assert page_findings(data, "2a") == []
    assert page_findings(data, "ua1") == []
    assert outloud_findings(data) == []
