"""Pass-through PDFs (a tenant's own attachment): the light check, and how the render stage uses
it (a bad file sets one letter aside, never the chunk)."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pikepdf
import pytest
from lxml import etree

from bbconnect.rendering import LetterRenderer
from bbconnect.rendering.letter import sample_assessment_letter
from bbconnect.rendering.passthrough import MAX_PAGES, PassthroughError, check_passthrough, count_pages, inspect_pdf

LIMIT = 500_000


def _pdf(pages: int = 1, **save) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    pdf.save(out, **save)
    return out.getvalue()


@pytest.fixture(scope="module")
def letter_pdf() -> bytes:
    return LetterRenderer().render(sample_assessment_letter())


def test_a_plain_pdf_passes_with_its_page_count(letter_pdf):
    facts = check_passthrough(_pdf(3), name="folder.pdf", max_bytes=LIMIT)
    assert facts.pages == 3 and not facts.encrypted
    assert check_passthrough(letter_pdf, name="letter.pdf", max_bytes=LIMIT).claims_pdfa


def test_pages_inside_compressed_object_streams_are_counted():
    data = _pdf(4, object_stream_mode=pikepdf.ObjectStreamMode.generate, compress_streams=True)
    assert b"/ObjStm" in data
    assert count_pages(data) == 4
    assert check_passthrough(data, name="a.pdf", max_bytes=LIMIT).pages == 4


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: b"", "is empty"),
        (lambda: b"PK\x03\x04 this is a zip", "is not a PDF"),
        (lambda: _pdf(1)[:-200], "damaged or truncated"),
        (lambda: _pdf(1, encryption=pikepdf.Encryption(owner="o", user="u")), "is encrypted"),
        (lambda: _pdf(1, encryption=pikepdf.Encryption(owner="o", user="")), "is encrypted"),
        (lambda: _pdf(MAX_PAGES + 1), f"has {MAX_PAGES + 1} pages; at most {MAX_PAGES}"),
        (lambda: b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\nstartxref\n9\n%%EOF\n", "has no pages"),
        (lambda: _pdf(1) + b" " * LIMIT, "bytes; at most 500000 bytes"),
    ],
)
def test_a_bad_attachment_is_refused_with_the_reason(make, fragment):
    with pytest.raises(PassthroughError) as caught:
        check_passthrough(make(), name="bijlage.pdf", max_bytes=LIMIT)
    assert fragment in str(caught.value)
    assert "'bijlage.pdf'" in str(caught.value)


def test_garbage_never_raises_anything_but_a_passthrough_error():
    rng = random.Random(7)
    good = _pdf(2, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.choice([len(data), rng.randrange(1, len(data))])
        try:
            check_passthrough(bytes(data[:cut]), name="x.pdf", max_bytes=LIMIT)
        except PassthroughError:
            pass


def test_inspect_reports_the_version():
    assert inspect_pdf(_pdf(1)).version.startswith(("1.", "2."))


# ------------------------------------------------------------------ the render stage uses it


class _Store:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})

    def get(self, key):
        return self.objects[key]

    def get_or_none(self, key):
        return self.objects.get(key)

    def put(self, key, data, content_type="application/octet-stream"):
        self.objects[key] = bytes(data)

    def get_json(self, key):
        return json.loads(self.objects[key])

    def get_json_or_none(self, key):
        return json.loads(self.objects[key]) if key in self.objects else None

    def put_json(self, key, value):
        self.objects[key] = json.dumps(value, default=str).encode()


def test_given_a_chunk_with_a_corrupt_and_a_good_attachment_when_rendered_then_only_that_letter_fails():
    from bbconnect.service import keys
    from bbconnect.service.render import render
    from bbconnect.tenants import load_tenant_config

    # Given a chunk of three letters for gemeente-lv: one with a good folder, one with a broken one
    config = load_tenant_config((Path(__file__).resolve().parents[3] / "config/tenants/gemeente-lv.json").read_bytes(),
                                source="lv")
    bsns = ["999990019", "999990020", "999990032"]
    letters = []
    for i, (bsn, attachment) in enumerate(zip(bsns, [["folder.pdf"], ["kapot.pdf"], []]), start=1):
        letters.append({
            "line": i, "reference": f"r-{i}", "sender": "lv", "stream": "AANSLAG", "bsn": bsn,
            "subject": "Aanslag gemeentelijke belastingen 2027", "text": "Geachte heer, mevrouw,\n\nUw aanslag.",
            "publish_at": None, "act_before": "2027-04-29T22:00:00Z", "template": "aanslag",
            "data": {"assessment_number": f"202700000{i}", "tax_year": 2027, "dagtekening": "2027-02-26",
                     "vervaldag": "2027-04-30", "lines": [{"code": "OZBE", "description": "OZB", "period": "2027",
                                                           "basis": "226000", "amount": "192.55"}],
                     "total": "192.55", "betalingskenmerk": "5000056789012345"},
            "attachments": attachment,
            "address": {"name": "A", "street": "S", "house_number": "1", "postcode": "2260 BA", "city": "L",
                        "country": "NL"},
            "bericht_id": f"1b4e28ba-2fa1-11d2-883f-0016d3cca42{i}",
        })
    chunk = {"tenant": "gemeente-lv", "index": 0, "batch_id": "b1", "sender": "lv", "stream": "AANSLAG",
             "source_key": "gemeente-lv/aanslagen.jsonl", "globe_batch_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca400",
             "letters": letters}
    work = _Store()
    work.put_json("chunk.json", chunk)
    work.put_json(keys.chunk("b1", 0, "routes.json"), {f"r-{i}": {"route": "digital"} for i in (1, 2, 3)})
    inbox = _Store({"gemeente-lv/attachments/folder.pdf": _pdf(2), "gemeente-lv/attachments/kapot.pdf": b"%PDF-1.4 kapot"})
    steps = []
    services = SimpleNamespace(
        work=work, inbox=inbox, configs=SimpleNamespace(get=lambda tenant: config),
        letters=SimpleNamespace(chunk_step=lambda *args, **kwargs: steps.append((args[3], kwargs.get("set_aside")))),
    )
    # When the chunk is rendered
    result = render({"chunk": {"index": 0, "key": "chunk.json", "globe_batch_id": chunk["globe_batch_id"]}}, services)  # type: ignore[arg-type]
    # Then the letter with the broken attachment is set aside with the reason, the others go on
    assert result == {"digital": 2, "failed": 1}
    rendered = work.get_json(keys.chunk("b1", 0, "rendered.json"))
    assert "attachment 'kapot.pdf' is damaged or truncated" in rendered["failed"]["r-2"]
    assert steps == [("RENDERED", ["r-2"])]  # the chunk is rendered, with r-2 set aside
    # and the GLOBE letters carry two PDFs where a folder was attached, the payment paragraph with
    # the link (spaces around it) and the due date as EindDatumHandelingsTermijn
    xml = etree.fromstring(work.get(keys.chunk("b1", 0, "berichten.xml")))
    berichten = xml.findall(".//{*}Bericht")
    assert len(berichten) == 2
    assert [len(b.findall(".//{*}Bijlage")) for b in berichten] == [2, 1]
    text = berichten[0].find(".//{*}BerichtTekst").text
    assert "betalingskenmerk 5000 0567 8901 2345" in text
    assert " https://betalen.lv.example/ideal?aanslag=2027000001&bedrag=192.55 " in text
    assert berichten[0].find(".//{*}EindDatumHandelingsTermijn").text.startswith("2027-04-29T22:00:00")
