"""Split a batch file's accepted letters into GLOBE batches.

A chunk is what Logius calls a batch: at most 1000 letters, at most 100 MB including base64, one
sender (BerichtLeverancierID), one stream (BerichtType) and so one connection. Identifiers are
derived, not drawn: the same batch file always yields the same GLOBE BatchIDs and BerichtIDs, so a
retried or restarted execution resends with the same ids and Logius answers `BerichtBestaatAl`
instead of delivering a letter twice.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_LETTERS_PER_GLOBE_BATCH = 1000
MAX_GLOBE_BATCH_BYTES = 100 * 1000 * 1000
# What one letter adds to a batch before its PDF is known: the XML around it and a rendered letter
# (base64) with room to spare (a 2-page assessment is about 21 kB, 28 kB as base64). A letter with
# an attachment counts that attachment at Logius' maximum (500 kB, 667 kB as base64).
ESTIMATED_LETTER_BYTES = 60_000
ESTIMATED_ATTACHMENT_BYTES = 680_000


def estimated_size(letter) -> int:
    attachments = getattr(letter, "attachments", None) or []
    return ESTIMATED_LETTER_BYTES + ESTIMATED_ATTACHMENT_BYTES * len(attachments)

_NAMESPACE = uuid.UUID("6f1d3c8e-2b8a-4f0e-9a57-6b1e0c4d2a10")


def bericht_id(tenant: str, reference: str) -> str:
    """The BerichtID of a letter: stable for the tenant's reference, so a resend reuses it."""
    return str(uuid.uuid5(_NAMESPACE, f"letter:{tenant}:{reference}"))


def globe_batch_id(batch_id: str, index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"batch:{batch_id}:{index}"))


@dataclass(frozen=True)
class ChunkKey:
    sender: str
    stream: str
    connection: str | None  # None: a paper-only stream without a connection


@dataclass
class Chunk:
    index: int
    key: ChunkKey
    globe_batch_id: str
    letters: list = field(default_factory=list)
    estimated_bytes: int = 0


def plan_chunks(
    batch_id: str,
    letters: Iterable,
    key_of,
    *,
    max_letters: int = MAX_LETTERS_PER_GLOBE_BATCH,
    size_of=estimated_size,
    max_bytes: int = MAX_GLOBE_BATCH_BYTES,
) -> list[Chunk]:
    """Group letters by `key_of(letter)` (sender, stream, connection) in input order and cut each
    group into chunks within the letter and byte limits."""
    if not 1 <= max_letters <= MAX_LETTERS_PER_GLOBE_BATCH:
        raise ValueError(f"max_letters must be 1..{MAX_LETTERS_PER_GLOBE_BATCH}, got {max_letters}")
    open_chunks: dict[ChunkKey, Chunk] = {}
    chunks: list[Chunk] = []
    for letter in letters:
        key = key_of(letter)
        size = size_of(letter)
        chunk = open_chunks.get(key)
        if chunk is None or len(chunk.letters) >= max_letters or chunk.estimated_bytes + size > max_bytes:
            index = len(chunks)
            chunk = Chunk(index=index, key=key, globe_batch_id=globe_batch_id(batch_id, index))
            chunks.append(chunk)
            open_chunks[key] = chunk
        chunk.letters.append(letter)
        chunk.estimated_bytes += size
    return chunks


def batches_of(items: Sequence, size: int) -> list[Sequence]:
    """`items` in slices of at most `size` (the WUS check takes at most 250 BSNs a call)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
