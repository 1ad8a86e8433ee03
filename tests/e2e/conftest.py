"""One local bbconnect (moto + the Logius simulator + the inbound endpoint) for the end-to-end tests."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file
from bbconnect_local.fake_ebms_adapter import FakeEbmsAdapter
from bbconnect_local.pki import TestPKI


ASYNC_TENANT = "gemeente-lv-async"
# The demo tenant with a digital deadline of seconds, for what must happen when it comes.
DEADLINE_TENANT = "gemeente-lv-deadline"
SHORT_DEADLINE_SECONDS = 45
ADAPTER_TENANT = "gemeente-lv-adapter"
# The demo tenant once per stream policy (digital_first is the demo tenant itself).
POLICY_TENANTS = {"digital_first": "gemeente-lv", "digital_and_paper": "gemeente-lv-both", "paper_only": "gemeente-lv-paper"}


@pytest.fixture(scope="package")
def fake_adapter(tmp_path_factory):
    """A vendor's own ebms-core adapter (its REST API, in memory), with a certificate of its own CA."""
    pki = TestPKI(tmp_path_factory.mktemp("adapter-pki"))
    adapter = FakeEbmsAdapter(identity=pki.issue("ebms-adapter", client=False, server=True), ca_path=pki.ca_cert_path)
    adapter.start()
    adapter.ca_bundle = pki.ca_cert_path
    yield adapter
    adapter.stop()


def _configs(folder: Path, adapter) -> Path:
    """The shipped tenant configurations and CPAs, plus the demo tenant once more as
    `gemeente-lv-async`, on the CPA whose acknowledgements come as messages of their own."""
    shutil.copytree(REPO_ROOT / "config", folder, dirs_exist_ok=True)
    config = json.loads((folder / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
    # A slow connection (5 letters a second), so the tests see the throttle and fair sharing at work.
    config["connections"]["lv-logius"]["max_send_rate"] = 5
    (folder / "tenants" / "gemeente-lv.json").write_text(json.dumps(config), encoding="utf-8")
    config["tenant"] = ASYNC_TENANT
    config["connections"]["lv-logius"]["cpa"] = "../cpa/gemeente-lv-async.xml"
    (folder / "tenants" / f"{ASYNC_TENANT}.json").write_text(json.dumps(config), encoding="utf-8")
    for policy, tenant in POLICY_TENANTS.items():
        if tenant != "gemeente-lv":
            variant = json.loads(json.dumps(config))
            variant["tenant"] = tenant
            variant["streams"]["AANSLAG"]["policy"] = policy
            (folder / "tenants" / f"{tenant}.json").write_text(json.dumps(variant), encoding="utf-8")
    short = json.loads(json.dumps(config))
    short["tenant"] = DEADLINE_TENANT
    short["connections"]["lv-logius"]["cpa"] = "../cpa/gemeente-lv.xml"
    short["streams"]["AANSLAG"]["digital_deadline"] = f"PT{SHORT_DEADLINE_SECONDS}S"
    (folder / "tenants" / f"{DEADLINE_TENANT}.json").write_text(json.dumps(short), encoding="utf-8")
    config["tenant"] = ADAPTER_TENANT
    config["connections"]["lv-logius"]["cpa"] = "../cpa/gemeente-lv.xml"
    config["connections"]["lv-logius"]["adapter"] = {"base_url": adapter.base_url, "ca_bundle": f"file:{adapter.ca_bundle}"}
    (folder / "tenants" / f"{ADAPTER_TENANT}.json").write_text(json.dumps(config), encoding="utf-8")
    return folder / "tenants"


@pytest.fixture(scope="package")
def local_env(tmp_path_factory, fake_adapter):
    simulator = simulator_config_from_file(REPO_ROOT / "events" / "simulator" / "demo.json")
    with LocalEnvironment(config_dir=_configs(tmp_path_factory.mktemp("config"), fake_adapter), simulator=simulator, chunk_size=50,
                          workdir=tmp_path_factory.mktemp("local")) as env:
        yield env


_POOL: list[str] = []


def _bsn(seed: int) -> str:
    """The seed-th BSN that passes the 11-test in 999900000-999989999: test numbers no citizen has,
    distinct per seed, and apart from the sample batch's range (99999xxxx)."""
    if not _POOL:
        for candidate in range(999_900_000, 999_990_000):
            digits = [int(c) for c in str(candidate)]
            if (sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]) % 11 == 0:
                _POOL.append(str(candidate))
    return _POOL[seed]


@pytest.fixture
def make_batch(tmp_path):
    """Writes a JSON Lines batch for gemeente-lv with letters built from (reference, bsn) pairs."""
    def make(name: str, letters: list[tuple[str, str]], *, sender: str = "lv", **overrides) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as handle:
            for reference, bsn in letters:
                row = {
                    "reference": reference, "sender": "lv", "stream": "AANSLAG", "bsn": bsn,
                    "subject": "Aanslag gemeentelijke belastingen 2027", "text": "Geachte heer, mevrouw,\n\nHierbij uw aanslag.",
                    "act_before": "2027-04-30",
                    "data": {"assessment_number": reference[-10:], "tax_year": 2027, "dagtekening": "2027-02-26",
                             "vervaldag": "2027-04-30",
                             "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
                                        "basis": "226000", "amount": "192.55"}], "total": "192.55"},
                    "address": {"name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                                "city": "Leidschendam"},
                    **overrides,
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    return make


@pytest.fixture
def bsn():
    return _bsn
