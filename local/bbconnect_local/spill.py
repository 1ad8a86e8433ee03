"""Keep a long local run's memory bounded: what moto stores lives on disk, and freed memory goes
back to the system.

- **S3 objects to disk.** moto keeps each S3 object in a `SpooledTemporaryFile`, in memory up to
  `MOTO_S3_DEFAULT_KEY_BUFFER_SIZE` bytes (5 MB by default) and in an unnamed temporary file above
  that. A run's small objects (chunk files, rendered.json, outcomes, results, reports) add up to
  gigabytes at 100,000 letters; with the threshold at `SPILL_ABOVE_BYTES` they are on disk, and the
  temporary files vanish with the process. Each such file is an open file descriptor (about ten per
  GLOBE batch), so the process's soft limit on open files is raised to its hard limit.
- **A replaced S3 object closed once no read can still be using it** (`_close_replaced_objects_when_unread`).
- **EventBridge archives to disk.** moto keeps every archived event in a list; a run puts about
  three status events a letter on the bus, all archived. `spill_archives` puts each archive's
  events in a JSON Lines file of the work folder instead (`ArchivedEvents`: appended, counted and
  read back in order, which is all moto does with them: describe and replay).
- **Freed memory handed back.** Rendering, XML and ebMS messages allocate and free hundreds of MB per
  chunk, from many threads. glibc's malloc gives each thread an arena of its own and keeps what is
  freed in it; `install` limits the arenas to two and a daemon thread calls `malloc_trim` every few
  seconds, so the resident size follows what is in use. (Elsewhere than glibc this part is skipped.)

`install()` is idempotent; `LocalEnvironment.start` calls it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPILL_ABOVE_BYTES = 64 * 1024
TRIM_EVERY_SECONDS = 5.0
CLOSE_REPLACED_AFTER_SECONDS = 30.0  # far longer than any read of one object takes
_M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)

_installed = False
_lock = threading.Lock()


def install(*, spill_above: int = SPILL_ABOVE_BYTES, trim_every: float = TRIM_EVERY_SECONDS) -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    # read by moto for every object it creates (moto.settings.get_s3_default_key_buffer_size)
    os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(spill_above)
    _raise_open_files_limit()
    _close_replaced_objects_when_unread()
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(_M_ARENA_MAX, 2)
    threading.Thread(target=_trim, args=(libc, trim_every), name="malloc-trim", daemon=True).start()


def _close_replaced_objects_when_unread() -> None:
    """moto closes an S3 object's buffer the moment a PUT replaces it, while a GET that already has
    the object may still be reading it: that GET fails with "I/O operation on closed file" (a
    ValueError), which S3 never does. Seen as two answers for one sender's subscription list at once,
    one read refused as unreadable. A replaced object's buffer is closed `CLOSE_REPLACED_AFTER_SECONDS`
    later instead, by one daemon thread, when a read that had it has long finished."""
    import queue
    import time

    from moto.s3.models import FakeKey

    if getattr(FakeKey.dispose, "_closes_later", False):
        return
    close = FakeKey.dispose
    later: queue.Queue[tuple[float, Any]] = queue.Queue()

    def dispose(key: Any, garbage: bool = False) -> None:
        if garbage:  # from __del__: nothing holds it
            close(key)
        else:
            later.put((time.monotonic() + CLOSE_REPLACED_AFTER_SECONDS, key))

    def closer() -> None:
        while True:
            due, key = later.get()
            time.sleep(max(0.0, due - time.monotonic()))
            close(key)

    dispose._closes_later = True  # type: ignore[attr-defined]
    FakeKey.dispose = dispose  # type: ignore[method-assign]
    threading.Thread(target=closer, name="s3-close-replaced", daemon=True).start()


def _raise_open_files_limit() -> None:
    try:
        import resource
    except ImportError:  # not a Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard))
        except (ValueError, OSError):
            pass


def _glibc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None  # not glibc
    return libc


def _trim(libc, every: float) -> None:
    stop = threading.Event()
    while not stop.wait(every):
        libc.malloc_trim(0)


class ArchivedEvents:
    """An EventBridge archive's events in a file, in place of moto's list: `append`, `len` and
    iteration in the order they came. An iteration reads those that were there when it began, so a
    replay that archives as it goes ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._count = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as archive:
            archive.write(line)
            self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            count = self._count
        with open(self.path, encoding="utf-8") as archive:
            for _, line in zip(range(count), archive):
                yield json.loads(line)


def spill_archives(account: str, region: str, folder: Path) -> int:
    """Give each EventBridge archive moto holds for the account and region an `ArchivedEvents` in
    `folder` (what it held already is kept); how many archives."""
    from moto.events.models import events_backends

    archives = events_backends[account][region].archives
    for name, archive in archives.items():
        if isinstance(archive.events, ArchivedEvents):
            continue
        spilled = ArchivedEvents(folder / f"{name}.jsonl")
        for event in archive.events:
            spilled.append(event)
        archive.events = spilled  # type: ignore[assignment]
    return len(archives)
