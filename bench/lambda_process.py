"""What a benchmark process holds, measured as a Lambda container's process would hold it.

Two things set a benchmark run from this checkout apart from a function's container:

- `ru_maxrss` is not the process's own peak. Linux carries the high-water mark of the memory a
  process gives up at `exec` over into the new program, so a benchmark started by a big process (a
  pytest worker that has grown to 500 MB, say) reports that process's peak as its own before it
  has done anything. `VmHWM` in /proc/self/status is the high-water mark of the process's own memory
  since its `exec`: what the function's process would hold. (`ru_maxrss` is the fallback where
  there is no /proc.)
- The virtualenv holds more than the layer: the dev extra brings numpy (for pymupdf and
  onnxruntime), and fpdf imports numpy whenever it can, which costs some 17 MB the Lambda never
  pays. `layer_packages_only()` makes every installed distribution the layer does not ship
  (layers/bbconnect/requirements.txt) unimportable in this process, as it is in the function.
"""
from __future__ import annotations

import re
import resource
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

LAYER_REQUIREMENTS = Path(__file__).resolve().parents[1] / "layers" / "bbconnect" / "requirements.txt"


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """The process's resident set size now."""
    found = _status_mb("VmRSS")
    return found if found is not None else peak_rss_mb()


def peak_rss_mb() -> float:
    """The process's own peak resident set size since it started (not its parent's)."""
    found = _status_mb("VmHWM")
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def layer_packages_only() -> list[str]:
    """Make the top-level modules of installed distributions the layer does not ship unimportable
    (`import numpy` raises ImportError, as on Lambda); bbconnect itself stays. Call it before
    importing bbconnect. Returns the modules it hid."""
    shipped = {"bbconnect"}
    for line in LAYER_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        name = re.split(r"[\s=<>!~;\[]", line.strip(), maxsplit=1)[0]
        if name and not name.startswith("#"):
            shipped.add(_canonical(name))
    hidden = []
    for module, distributions in packages_distributions().items():
        if (module in sys.modules or module in sys.stdlib_module_names
                or any(_canonical(d) in shipped for d in distributions)):
            continue
        sys.modules[module] = None  # type: ignore[assignment]  # the import system's "not importable"
        hidden.append(module)
    return sorted(hidden)
