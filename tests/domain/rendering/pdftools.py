"""Helpers for the rendering tests: read a PDF back with tools that did not write it.

pikepdf (qpdf) for structure and XMP, poppler's ``pdftotext``/``pdffonts``/``pdftoppm`` and zbar's
``zbarimg`` as command-line tools; each helper skips the calling test with the reason when its tool
is missing.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package {package}: apt-get install -y {package})")
    return path


def pdftotext(data: bytes, *, layout: bool = True) -> str:
    need("pdftotext", "poppler-utils")
    args = ["pdftotext", *(["-layout"] if layout else ["-raw"]), "-", "-"]
    out = subprocess.run(args, input=data, capture_output=True, check=True).stdout
    return out.decode("utf-8")


def flat(text: str) -> str:
    return " ".join(text.split())


def pdffonts(data: bytes) -> list[dict[str, str]]:
    """One dict per font: name, type, emb, sub, uni."""
    need("pdffonts", "poppler-utils")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        lines = subprocess.run(["pdffonts", handle.name], capture_output=True, check=True, text=True).stdout.splitlines()
    fonts = []
    for line in lines[2:]:
        parts = line.split()
        # name, type words..., encoding, emb, sub, uni, object id, generation
        fonts.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4], "uni": parts[-3]})
    return fonts


def qr_payloads(data: bytes, *, page: int | None = None, dpi: int = 300) -> list[bytes]:
    """Render the page(s) to PNG with pdftoppm and decode every QR code on them with zbarimg."""
    need("pdftoppm", "poppler-utils")
    need("zbarimg", "zbar-tools")
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "letter.pdf"
        pdf.write_bytes(data)
        args = ["pdftoppm", "-r", str(dpi), "-gray", "-png"]
        if page is not None:
            args += ["-f", str(page), "-l", str(page)]
        subprocess.run([*args, str(pdf), str(Path(folder) / "page")], check=True)
        payloads: list[bytes] = []
        for image in sorted(Path(folder).glob("page*.png")):
            result = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sqrcode.binary", str(image)],
                                    capture_output=True)
            if result.returncode == 0:
                payloads.append(result.stdout.rstrip(b"\n"))
    return payloads
