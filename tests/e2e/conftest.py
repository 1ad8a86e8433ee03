"""One local bbconnect (moto + the Logius simulator + the inbound endpoint) for the end-to-end tests,
once per CPA profile of the demo tenant's connection: osb-rm with the acknowledgement in the HTTP
response (`sync`), osb-rm with acknowledgements as messages of their own (`async`), and osb-rm-s,
signed (`signed`). The default run has the whole suite on `sync` and the tests marked
`every_profile` on all three; `-m slow` runs the whole suite on every profile."""
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
ASYNC_CPA = ("../cpa/gemeente-lv-async.xml", "CPA-GLOBE-00000001899410741000-02")
# The demo tenant's connection per profile: (CPA file, its cpaid).
PROFILES = {
    "sync": ("../cpa/gemeente-lv.xml", "CPA-GLOBE-00000001899410741000-01"),
    "async": ASYNC_CPA,
    "signed": ("../cpa/gemeente-lv-signed.xml", "CPA-GLOBE-00000001899410741000-S1"),
}


def pytest_collection_modifyitems(config, items):
    """The sync profile runs every e2e test; the other profiles only those marked `every_profile`
    unless `-m slow` asks for them all."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        profile = callspec.params.get("local_env") if callspec is not None else None
        if profile not in (None, "sync") and item.get_closest_marker("every_profile") is None:
            item.add_marker(pytest.mark.slow)


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


def _configs(folder: Path, adapter, profile: str) -> Path:
    """The shipped tenant configurations and CPAs, with the demo tenant on the profile's CPA, plus the
    demo tenant once more as `gemeente-lv-async`, on the CPA whose acknowledgements come as messages
    of their own."""
    shutil.copytree(REPO_ROOT / "config", folder, dirs_exist_ok=True)
    config = json.loads((folder / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
    # A slow connection (5 letters a second), so the tests see the throttle and fair sharing at work.
    config["connections"]["lv-logius"]["max_send_rate"] = 5
    config["connections"]["lv-logius"]["cpa"], config["connections"]["lv-logius"]["cpa_id"] = PROFILES[profile]
    if profile == "signed":  # and WUS 2W-be-S: the subscription checks are signed both ways too
        config["connections"]["lv-logius"].update(wus_profile="2W-be-S", logius_signing_certificate="file:set-by-the-local-run")
    (folder / "tenants" / "gemeente-lv.json").write_text(json.dumps(config), encoding="utf-8")
    config["connections"]["lv-logius"].pop("wus_profile", None)
    config["connections"]["lv-logius"].pop("logius_signing_certificate", None)
    config["tenant"] = ASYNC_TENANT
    config["connections"]["lv-logius"]["cpa"], config["connections"]["lv-logius"]["cpa_id"] = ASYNC_CPA
    (folder / "tenants" / f"{ASYNC_TENANT}.json").write_text(json.dumps(config), encoding="utf-8")
    for policy, tenant in POLICY_TENANTS.items():
        if tenant != "gemeente-lv":
            variant = json.loads(json.dumps(config))
            variant["tenant"] = tenant
            variant["streams"]["AANSLAG"]["policy"] = policy
            (folder / "tenants" / f"{tenant}.json").write_text(json.dumps(variant), encoding="utf-8")
    short = json.loads(json.dumps(config))
    short["tenant"] = DEADLINE_TENANT
    short["connections"]["lv-logius"]["cpa"], short["connections"]["lv-logius"]["cpa_id"] = PROFILES["sync"]
    short["streams"]["AANSLAG"]["digital_deadline"] = f"PT{SHORT_DEADLINE_SECONDS}S"
    (folder / "tenants" / f"{DEADLINE_TENANT}.json").write_text(json.dumps(short), encoding="utf-8")
    config["tenant"] = ADAPTER_TENANT
    config["connections"]["lv-logius"]["cpa"], config["connections"]["lv-logius"]["cpa_id"] = PROFILES["sync"]
    config["connections"]["lv-logius"]["adapter"] = {"base_url": adapter.base_url, "ca_bundle": f"file:{adapter.ca_bundle}"}
    (folder / "tenants" / f"{ADAPTER_TENANT}.json").write_text(json.dumps(config), encoding="utf-8")
    return folder / "tenants"


@pytest.fixture(scope="package", params=list(PROFILES))
def local_env(request, tmp_path_factory, fake_adapter):
    simulator = simulator_config_from_file(REPO_ROOT / "events" / "simulator" / "demo.json")
    config_dir = _configs(tmp_path_factory.mktemp("config"), fake_adapter, request.param)
    with LocalEnvironment(config_dir=config_dir, simulator=simulator, chunk_size=50,
                          workdir=tmp_path_factory.mktemp("local")) as env:
        env.profile = request.param
        env.demo_cpa_id = PROFILES[request.param][1]
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
