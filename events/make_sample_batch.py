#!/usr/bin/env python3
"""Write the demo batch of tenant `gemeente-lv` deterministically (seeded random).

    python events/make_sample_batch.py           # (re)write the files
    python events/make_sample_batch.py --check   # exit 1 if a file differs from what it would write

Writes, relative to this script:

* `batches/gemeente-lv/aanslagen-2027.jsonl`: 200 municipal tax assessments (OZBE/AFV/RIOG, modelled
  on the aanslagbiljet of the Logius training) plus exactly 5 bad rows, each with one designed fault
  (see `BAD_ROWS`);
* `batches/gemeente-lv/aanslagen-2027-small.csv`: the first 20 rows in CSV form (all good);
* `simulator/demo.json`: which BSNs have a Berichtenbox (70 % of the good rows) and one result-code
  override (`TechnischProbleem`) so that one letter ends FAILED.

All people, streets and numbers are fictional. BSNs are drawn from the 99999xxxx test range and pass
the 11-test. The good rows carry no `publish_at`; `act_before` is the vervaldag. Each assessment
carries a 16-digit `betalingskenmerk` (check digit per the Betalingskenmerk rules, made from the
assessment number); the payment instructions themselves (amount, IBAN, kenmerk, iDEAL link) are
added to the Berichtenbox text and printed in the PDF by bbconnect, so the letter text does not
repeat them.
"""
from __future__ import annotations

import csv
import io
import json
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from stdnum.nl import bsn as stdnum_bsn

from bbconnect.payment import format_betalingskenmerk, generate_betalingskenmerk

HERE = Path(__file__).resolve().parent
JSONL_PATH = HERE / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"
CSV_PATH = HERE / "batches" / "gemeente-lv" / "aanslagen-2027-small.csv"
DEMO_PATH = HERE / "simulator" / "demo.json"

SEED = 20270226
GOOD_ROWS = 200
CSV_ROWS = 20
SUBSCRIBED_SHARE = 0.7

SENDER = "lv"
STREAM = "AANSLAG"
TAX_YEAR = 2027
DAGTEKENING = "2027-02-26"
VERVALDAG = "2027-04-30"
WAARDEPEILDATUM = "2026-01-01"
SUBJECT = f"Aanslag gemeentelijke belastingen {TAX_YEAR}"

OZB_RATE = Decimal("0.000852")  # of the WOZ value, owners
AFV_SINGLE = Decimal("262.80")  # one-person household
AFV_MULTI = Decimal("359.40")
RIOG = Decimal("214.56")

# Line number (1-based, in the final file) -> the fault that row is designed to have.
BAD_ROWS: dict[int, str] = {
    37: "INVALID_BSN",
    78: "FIELD_TOO_LONG",
    121: "UNKNOWN_STREAM",
    164: "DUPLICATE_REFERENCE",
    199: "PUBLISH_TOO_FAR",
}
DUPLICATED_LINE = 5  # the good row whose reference line 164 repeats

INITIALS = ["A.", "B.", "C.", "D.", "E.", "F.", "G.", "H.", "I.", "J.", "K.", "L.", "M.", "N.",
            "P.", "R.", "S.", "T.", "W.", "Y."]
INFIXES = ["", "", "", "", "van ", "de ", "van der ", "van den ", "ter "]
SURNAME_HEADS = ["Brink", "Zilver", "Kroon", "Vliet", "Veld", "Rozen", "Duin", "Hazel", "Klaver",
                 "Molen", "Linde", "Wilg", "Riet", "Beuk", "Meer", "Oever", "Esch", "Gaarde"]
SURNAME_TAILS = ["hoeve", "kamp", "sloot", "horst", "stede", "wijck", "haven", "dael", "berg",
                 "brugge", "gaarde", "hof", "laar", "schot", "werf", "zande"]

# Invented streets, each with a town and a four-digit postcode of that town.
STREETS: list[tuple[str, str, str]] = [
    ("Zilverschoonlaan", "Leidschendam", "2262"),
    ("Kroosvlietstraat", "Leidschendam", "2263"),
    ("Reigerveenhof", "Leidschendam", "2264"),
    ("Klaverweidekade", "Leidschendam", "2265"),
    ("Molendijkpad", "Leidschendam", "2266"),
    ("Eikenhoutsingel", "Leidschendam", "2267"),
    ("Vlinderbosweg", "Voorburg", "2271"),
    ("Lindeboomgaard", "Voorburg", "2272"),
    ("Wilgenoeverlaan", "Voorburg", "2273"),
    ("Zonnedauwstraat", "Voorburg", "2274"),
    ("Beukenrijplein", "Voorburg", "2275"),
    ("Rietzoomkade", "Voorburg", "2275"),
    ("Veenpolderweg", "Stompwijk", "2264"),
]
POSTCODE_LETTERS = "ABCEGHJKLMNPRSTVWXZ"


def _test_bsns(rng: random.Random, count: int) -> list[str]:
    """Distinct BSNs from the 99999xxxx test range that pass the 11-test, in seeded order."""
    pool = [f"{n:09d}" for n in range(999_990_000, 1_000_000_000) if stdnum_bsn.is_valid(f"{n:09d}")]
    return rng.sample(pool, count)


def _euro(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _euro_nl(amount: Decimal) -> str:
    whole, cents = f"{amount:.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", ".")
    return f"{groups},{cents}"


def _person(rng: random.Random) -> str:
    initials = "".join(rng.sample(INITIALS, rng.choice([1, 1, 2, 2, 3])))
    surname = rng.choice(SURNAME_HEADS) + rng.choice(SURNAME_TAILS)
    return f"{initials} {rng.choice(INFIXES)}{surname}"


def _address(rng: random.Random) -> dict[str, str]:
    street, city, digits = rng.choice(STREETS)
    number = str(rng.randint(1, 180)) + rng.choice(["", "", "", "", "a", "b"])
    postcode = f"{digits} {rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
    return {
        "name": _person(rng),
        "street": street,
        "house_number": number,
        "postcode": postcode,
        "city": city,
    }


def _assessment(rng: random.Random, sequence: int, address: dict[str, str]) -> dict:
    where = f"{address['street']} {address['house_number']} {address['city']}"
    lines = []
    if rng.random() < 0.6:  # owner-occupier: also the property tax
        woz = Decimal(rng.randrange(185, 860) * 1000)
        ozb = (woz * OZB_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        lines.append({"code": "OZBE", "description": f"Onroerende-zaakbelasting eigenaren {where}",
                      "period": str(TAX_YEAR), "basis": str(woz), "amount": _euro(ozb)})
    household = rng.choice(["1", "2", "2"])
    lines.append({"code": "AFV", "description": "Afvalstoffenheffing",
                  "period": str(TAX_YEAR), "basis": household,
                  "amount": _euro(AFV_SINGLE if household == "1" else AFV_MULTI)})
    lines.append({"code": "RIOG", "description": "Rioolheffing gebruikers vast bedrag",
                  "period": str(TAX_YEAR), "basis": "1", "amount": _euro(RIOG)})
    total = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    number = f"{TAX_YEAR}{sequence:06d}"
    return {
        "assessment_number": number,
        "tax_year": TAX_YEAR,
        "dagtekening": DAGTEKENING,
        "vervaldag": VERVALDAG,
        "waardepeildatum": WAARDEPEILDATUM,
        "lines": lines,
        "total": _euro(total),
        "betalingskenmerk": format_betalingskenmerk(generate_betalingskenmerk(number)),
    }


def _text(data: dict, address: dict[str, str]) -> str:
    return (
        "Geachte heer, mevrouw,\n\n"
        f"Hierbij ontvangt u de aanslag gemeentelijke belastingen {TAX_YEAR} voor "
        f"{address['street']} {address['house_number']} in {address['city']}. "
        f"Het totaalbedrag is € {_euro_nl(Decimal(data['total']))}. In de bijlage vindt u het "
        "aanslagbiljet met de toelichting op de heffingen.\n\n"
        "Meer over de WOZ-waarde, de tarieven en bezwaar maken leest u op www.lv.nl/belastingen .\n\n"
        "Met vriendelijke groet,\n"
        "Gemeente Leidschendam-Voorburg"
    )


def _row(rng: random.Random, sequence: int, bsn: str) -> dict:
    address = _address(rng)
    data = _assessment(rng, sequence, address)
    return {
        "reference": f"lv-aanslag-{TAX_YEAR}-{sequence:06d}",
        "sender": SENDER,
        "stream": STREAM,
        "bsn": bsn,
        "subject": SUBJECT,
        "text": _text(data, address),
        "act_before": VERVALDAG,
        "data": data,
        "address": address,
    }


def _break_bsn(bsn: str) -> str:
    """Change the check digit so the number fails the 11-test (any other last digit does)."""
    broken = bsn[:8] + str((int(bsn[8]) + 1) % 10)
    assert not stdnum_bsn.is_valid(broken)
    return broken


def build() -> tuple[list[dict], dict]:
    """The rows of the JSONL file in order, and the simulator's demo settings."""
    rng = random.Random(SEED)
    bsns = _test_bsns(rng, GOOD_ROWS + len(BAD_ROWS))
    good = [_row(rng, sequence, bsns[sequence - 1]) for sequence in range(1, GOOD_ROWS + 1)]

    rows = list(good)
    spare = iter(bsns[GOOD_ROWS:])
    next_sequence = GOOD_ROWS + 1
    for line, fault in sorted(BAD_ROWS.items()):
        bad = _row(rng, next_sequence, next(spare))
        next_sequence += 1
        if fault == "INVALID_BSN":
            bad["bsn"] = _break_bsn(bad["bsn"])
        elif fault == "FIELD_TOO_LONG":
            bad["subject"] = f"Aanslag gemeentelijke belastingen {TAX_YEAR} en uw WOZ-beschikking voor uw woning"
        elif fault == "UNKNOWN_STREAM":
            bad["stream"] = "PARKEER"
        elif fault == "DUPLICATE_REFERENCE":
            bad["reference"] = good[DUPLICATED_LINE - 1]["reference"]
        elif fault == "PUBLISH_TOO_FAR":
            bad["publish_at"] = "2099-01-01"
        else:  # pragma: no cover
            raise AssertionError(fault)
        rows.insert(line - 1, bad)

    good_bsns = [row["bsn"] for row in good]
    subscribed_set = set(rng.sample(good_bsns, round(len(good_bsns) * SUBSCRIBED_SHARE)))
    subscribed = [bsn for bsn in good_bsns if bsn in subscribed_set]  # in file order
    failing = rng.choice(subscribed)
    demo = {"subscribed": subscribed, "result_codes": {failing: "TechnischProbleem"}}
    return rows, demo


CSV_COLUMNS = (
    ["reference", "sender", "stream", "bsn", "subject", "text", "publish_at", "act_before", "template",
     "attachments", "data.assessment_number", "data.tax_year", "data.dagtekening", "data.vervaldag",
     "data.waardepeildatum", "data.betalingskenmerk"]
    + [f"data.lines.{i}.{part}" for i in range(3) for part in ("code", "description", "period", "basis", "amount")]
    + ["data.total", "address.name", "address.street", "address.house_number", "address.postcode",
       "address.city", "address.country"]
)


def _flatten(row: dict) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in row.items():
        if key == "data":
            for data_key, data_value in value.items():
                if data_key == "lines":
                    for i, line in enumerate(data_value):
                        for part, item in line.items():
                            flat[f"data.lines.{i}.{part}"] = str(item)
                else:
                    flat[f"data.{data_key}"] = str(data_value)
        elif key == "address":
            for part, item in value.items():
                flat[f"address.{part}"] = item
        elif key == "text":
            # One letter per physical line: line breaks as Logius' literal \r\n.
            flat["text"] = value.replace("\n", "\\r\\n")
        elif key == "attachments":
            flat["attachments"] = ";".join(value)
        else:
            flat[key] = value
    return flat


def render() -> dict[Path, bytes]:
    rows, demo = build()
    jsonl = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    assert all(line > CSV_ROWS for line in BAD_ROWS), "the CSV sample holds good rows only"
    for row in rows[:CSV_ROWS]:
        writer.writerow(_flatten(row))
    demo_json = (json.dumps(demo, indent=2) + "\n").encode("utf-8")
    return {JSONL_PATH: jsonl, CSV_PATH: buffer.getvalue().encode("utf-8"), DEMO_PATH: demo_json}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, content in render().items():
        if check:
            if not path.exists() or path.read_bytes() != content:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(content)} bytes)")
    for path in stale:
        print(f"out of date: {path.relative_to(HERE.parent)}; run python events/make_sample_batch.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
