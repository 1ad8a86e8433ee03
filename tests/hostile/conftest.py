"""Shared by the hostile-XML tests: a server that counts what an attack tries to fetch, and the files
an attack tries to read."""
from __future__ import annotations

import pytest

from .corpus import SECRET, XmlContext
from .inbound import CountingServer


@pytest.fixture(scope="module")
def server():
    with CountingServer() as running:
        yield running


@pytest.fixture(scope="module")
def context(tmp_path_factory, server) -> XmlContext:
    folder = tmp_path_factory.mktemp("xml-attacks")
    (folder / "secret.txt").write_text(SECRET)
    (folder / "evil.dtd").write_text(f'<!ENTITY leak "{SECRET}">')
    return XmlContext(secret_file=folder / "secret.txt", dtd_file=folder / "evil.dtd", base_url=server.base_url)
