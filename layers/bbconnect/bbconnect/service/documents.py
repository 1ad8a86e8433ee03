"""From a letter row and its tenant configuration to the document the renderer draws.

Logos are files next to the tenant configurations (``branding.logo``, e.g. ``logos/lv.svg``):
in the config bucket under ``tenants/`` on AWS, in ``TENANT_CONFIG_DIR`` locally. They are read
once per container and kept for a few minutes (like the configurations themselves). A logo that
is missing or unreadable is logged (its path only) and the letter goes out with the word mark:
a tax letter is not held back for its branding.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from bbconnect import runtime
from bbconnect.letters import AanslagData
from bbconnect.payment import Payment, payment_for_letter
from bbconnect.rendering.letter import Assessment, LetterDocument, SenderBlock, TaxLine
from bbconnect.rendering.logos import Logo, LogoError
from bbconnect.service.contracts.intake import ChunkLetter
from bbconnect.tenants import Organisation, Stream

__all__ = [
    "LogoSource",
    "assessment_of",
    "container_logos",
    "letter_document",
    "letter_payment",
    "paragraphs_of",
    "recipient_lines",
    "sender_block",
]

log = logging.getLogger(__name__)

#: reads a logo file by its path relative to the tenant configurations; None if it is not there
LogoReader = Callable[[str], "bytes | None"]


class LogoSource:
    """Logos by path, read through ``reader`` and kept ``max_age_seconds`` (as parsed ``Logo``)."""

    def __init__(self, reader: LogoReader, *, max_age_seconds: float = 300) -> None:
        self._reader = reader
        self._max_age = max_age_seconds
        self._cache: dict[str, tuple[float, Logo | None]] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> Logo | None:
        with self._lock:
            cached = self._cache.get(path)
            if cached and time.monotonic() - cached[0] < self._max_age:
                return cached[1]
        logo: Logo | None = None
        try:
            data = self._reader(path)
            if data is None:
                log.warning("logo %s not found; the letter shows the sender's name instead", path)
            else:
                logo = Logo.from_bytes(data)
        except LogoError as error:
            log.warning("logo %s cannot be used (%s); the letter shows the sender's name instead", path, error)
        except Exception as error:  # storage trouble: the letter still goes out
            log.warning("logo %s could not be read (%s)", path, type(error).__name__)
            return None
        with self._lock:
            self._cache[path] = (time.monotonic(), logo)
        return logo


def directory_reader(folder: Path | str) -> LogoReader:
    base = Path(folder).resolve()

    def read(path: str) -> bytes | None:
        target = (base / path).resolve()
        if base not in target.parents or not target.is_file():
            return None
        return target.read_bytes()

    return read


def bucket_reader(s3: Any, bucket: str, prefix: str = "tenants/") -> LogoReader:
    def read(path: str) -> bytes | None:
        try:
            data: bytes = s3.get_object(Bucket=bucket, Key=f"{prefix}{path}")["Body"].read()
            return data
        except s3.exceptions.NoSuchKey:
            return None

    return read


_containers: dict[str, LogoSource | None] = {}
_container_lock = threading.Lock()


def container_logos() -> LogoSource | None:
    """The container's logo source, from the function's settings (None when it has none)."""
    key = runtime.container()
    if key not in _containers:
        with _container_lock:
            if key not in _containers:
                try:
                    settings = runtime.settings()
                except Exception:  # not running as a bbconnect function (unit tests, tools)
                    return None
                if settings.tenant_config_dir:
                    _containers[key] = LogoSource(directory_reader(settings.tenant_config_dir))
                elif settings.config_bucket:
                    _containers[key] = LogoSource(bucket_reader(runtime.client("s3"), settings.config_bucket))
                else:
                    _containers[key] = None
    return _containers[key]


def reset() -> None:
    with _container_lock:
        _containers.clear()


def sender_block(organisation: Organisation, logos: LogoSource | None = None) -> SenderBlock:
    address = organisation.address
    first = f"Postbus {address.po_box}" if address.po_box else f"{address.street} {address.house_number}"
    branding = organisation.branding
    logo_path = organisation.logo_path
    logo = logos.get(logo_path) if (logos is not None and logo_path) else None
    return SenderBlock(
        name=organisation.name, address_lines=(first, f"{address.postcode} {address.city}"),
        phone=organisation.phone, website=organisation.website, iban=organisation.iban,
        logo_png=logo.data if logo is not None and logo.kind == "png" else None,
        logo_svg=logo.data if logo is not None and logo.kind == "svg" else None,
        colour=branding.colour if branding else None,
        footer=branding.footer if branding else None,
    )


def recipient_lines(address: Mapping[str, Any] | None) -> tuple[str, ...]:
    if not address:
        return ()
    lines = [address.get("name") or "", f"{address.get('street', '')} {address.get('house_number', '')}".strip(),
             f"{address.get('postcode', '')}  {address.get('city', '')}".strip()]
    if (address.get("country") or "NL") != "NL":
        lines.append(address["country"])
    return tuple(line for line in lines if line)


def assessment_of(data: Mapping[str, Any], taxpayer: str | None = None) -> Assessment:
    """The validated `aanslag`/`waterschap` data (see `letters.AanslagData`) as the renderer's Assessment.
    The belastingplichtige is `data.belastingplichtige` when the row has one, else ``taxpayer`` (the
    addressee)."""
    canonical = AanslagData.model_validate(data)
    extra = canonical.model_extra or {}
    value_date = extra.get("waardepeildatum")
    named = extra.get("belastingplichtige")
    return Assessment(
        number=canonical.assessment_number, tax_year=canonical.tax_year, due_date=canonical.vervaldag,
        lines=tuple(TaxLine(code=line.code, description=line.description, period=line.period or "",
                            basis=line.basis, amount=line.amount, heffing=line.heffing)
                    for line in canonical.lines),
        total=canonical.total,
        value_date=_date_or_none(value_date),
        taxpayer=str(named) if isinstance(named, str) and named.strip() else taxpayer,
    )


def _date_or_none(value: object) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def paragraphs_of(text: str) -> tuple[str, ...]:
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n")]
    return tuple(block for block in blocks if block)


LetterRow = ChunkLetter | Mapping[str, Any]  # a chunk's letter, or a batch file's row as it was given


def as_letter(letter: LetterRow) -> ChunkLetter:
    """The letter typed (a row has no line or BerichtID yet: the document needs neither)."""
    return letter if isinstance(letter, ChunkLetter) else ChunkLetter.model_validate({"line": 1, "bericht_id": "", **letter})


def letter_payment(letter: LetterRow, organisation: Organisation, stream: Stream) -> Payment | None:
    """What the letter asks the citizen to pay (None: nothing, a refund, or payments off)."""
    content = as_letter(letter)
    return payment_for_letter(
        content.template or stream.template, content.data, stream.payment_settings, creditor=organisation.name,
        iban=organisation.iban, bic=organisation.bic, reference=content.reference, sender=organisation.id,
    )


def letter_document(letter: LetterRow, organisation: Organisation, stream: Stream, *, variant: Literal["digital", "paper"],
                    today: date | None = None, logos: LogoSource | bool | None = True) -> LetterDocument:
    """``logos``: a :class:`LogoSource`, True for the container's (:func:`container_logos`), or
    False/None for none."""
    content = as_letter(letter)
    template = content.template or stream.template
    data = content.data
    address = content.address or {}
    assessment = assessment_of(data, address.get("name")) if template in ("aanslag", "waterschap") else None
    letter_date = date.fromisoformat(data["dagtekening"]) if data.get("dagtekening") else (today or datetime.now(UTC).date())
    source = container_logos() if logos is True else (logos or None)
    return LetterDocument(
        sender=sender_block(organisation, source), recipient_lines=recipient_lines(content.address),
        subject=content.subject, letter_date=letter_date, reference=content.reference,
        # an assessment's letter says what the stream's wording says; the row's text is the
        # Berichtenbox message (which may rightly say the aanslag is in the attachment)
        paragraphs=() if assessment is not None else paragraphs_of(content.text),
        template=template, assessment=assessment, variant=variant,
        payment=letter_payment(content, organisation, stream),
        wording=stream.letter, attachments=tuple(content.attachments),
    )
