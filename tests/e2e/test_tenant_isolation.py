"""Tenant isolation end to end: a file under gemeente-lv/ that names other tenants' senders (by id or
OIN) or tries to pick its own OIN, connection or certificate gets those rows rejected; nothing of them
reaches Logius; and what did go out went with gemeente-lv's OIN, client certificate and CPA.

The domain-level rules (every other shipped tenant's sender, secret references of another tenant)
are in tests/security/test_tenant_isolation.py."""
from __future__ import annotations

import json

from lxml import etree

from bbconnect_local.environment import REPO_ROOT

TENANT = "gemeente-lv"


def _config(tenant: str) -> dict:
    return json.loads((REPO_ROOT / "config" / "tenants" / f"{tenant}.json").read_text(encoding="utf-8"))


def _row(reference: str, bsn: str, **changes) -> dict:
    row = {
        "reference": reference, "sender": "lv", "stream": "AANSLAG", "bsn": bsn,
        "subject": "Aanslag gemeentelijke belastingen 2027", "text": "Geachte heer, mevrouw,\n\nHierbij uw aanslag.",
        "act_before": "2027-04-30",
        "data": {"assessment_number": reference[-10:].rjust(10, "0"), "tax_year": 2027, "dagtekening": "2027-02-26",
                 "vervaldag": "2027-04-30",
                 "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
                            "basis": "226000", "amount": "192.55"}], "total": "192.55"},
        "address": {"name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                    "city": "Leidschendam"},
    }
    row.update(changes)
    return row


def test_given_a_file_under_gemeente_lv_naming_other_tenants_senders_when_dropped_then_those_rows_are_rejected_and_only_lv_reaches_logius(
        local_env, bsn, tmp_path):
    lv, tilburg, cgm = _config(TENANT), _config("gemeente-tilburg"), _config("cgm")
    lv_oin = lv["organisations"]["lv"]["oin"]
    lv_connection = lv["connections"]["lv-logius"]
    tilburg_oin = tilburg["organisations"]["tilburg-belastingen"]["oin"]
    # Given the local run keeps the connections' certificates as on AWS: in Secrets Manager, in each tenant's folder
    assert local_env.tenant_config(TENANT)["connections"]["lv-logius"]["certificate"] == "secretsmanager:bbconnect/gemeente-lv/lv-logius"
    # And a file under gemeente-lv/ with two letters of its own and five that reach for other tenants
    own = {"iso-own-1": bsn(7200), "iso-own-2": bsn(7201)}
    foreign = {
        "iso-other-id": (bsn(7202), {"sender": "tilburg-belastingen"}, "UNKNOWN_SENDER"),
        "iso-other-oin": (bsn(7203), {"sender": tilburg_oin}, "UNKNOWN_SENDER"),
        "iso-cgm-client": (bsn(7204), {"sender": "cuijk"}, "UNKNOWN_SENDER"),
        "iso-own-oin-field": (bsn(7205), {"oin": tilburg_oin}, "UNKNOWN_FIELD"),
        "iso-connection-field": (bsn(7206), {"connection": "tilburg-belastingen",
                                             "certificate": "secretsmanager:bbconnect/gemeente-tilburg/tilburg-belastingen"},
                                 "UNKNOWN_FIELD"),
    }
    # (every citizen has a Berichtenbox, so a row that slipped through would be delivered)
    local_env.simulator_config.subscribed.update(set(own.values()) | {b for b, _, _ in foreign.values()})
    rows = [_row(reference, number) for reference, number in own.items()]
    rows += [_row(reference, number, **changes) for reference, (number, changes, _) in foreign.items()]
    path = tmp_path / "isolation.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    received_before = len(local_env.simulator.received_batches)
    # When it is dropped and runs
    run = local_env.wait_for_execution(local_env.drop(path, TENANT), timeout=240)
    # Then each foreign row is rejected with its code, and the own letters are delivered
    assert run.status == "SUCCEEDED", local_env.deployment.handler_errors
    report = json.loads(local_env.outbox_object(run.output["report"]))
    by_reference = {letter["reference"]: letter for letter in report["letters"]}
    assert set(by_reference) == set(own) | set(foreign)
    for reference, (_, _, code) in foreign.items():
        assert by_reference[reference]["status"] == "REJECTED", by_reference[reference]
        assert by_reference[reference]["reason"].startswith(f"{code}:"), by_reference[reference]
    assert {by_reference[reference]["status"] for reference in own} == {"DELIVERED"}
    # And everything Logius received since was sent as gemeente-lv: its OIN in From/PartyId and in
    # BerichtLeverancierID, its client certificate's OIN on the TLS connection, its CPA
    ours = {letter["globe_batch_id"] for letter in report["letters"] if letter.get("globe_batch_id")}
    received = local_env.simulator.received_batches[received_before:]
    sent = [batch for batch in received if batch.batch_id in ours]
    assert sent and sum(batch.letters for batch in sent) == len(own)
    other_oins = {org["oin"] for config in (tilburg, cgm) for org in config["organisations"].values()}
    other_oins |= {connection["oin"] for config in (tilburg, cgm) for connection in config["connections"].values()}
    for batch in sent:
        assert (batch.from_oin, batch.client_oin, batch.cpa_id) == (lv_connection["oin"], lv_connection["oin"], local_env.demo_cpa_id)
        payload = etree.fromstring(batch.payload)
        assert [e.text for e in payload.iter("{*}BerichtLeverancierID")] == [lv_oin]
        assert {e.text for e in payload.iter("{*}GebruikerID")} == set(own.values())
        assert not any(oin.encode() in batch.payload for oin in other_oins)
    # And no batch Logius received since carries a rejected row's citizen
    for batch in received:
        assert not any(number.encode() in batch.payload for number, _, _ in foreign.values())
    # And Logius' delivery log has the two letters, from gemeente-lv over its own connection
    ids = {by_reference[reference]["bericht_id"] for reference in own}
    delivered = [record for record in local_env.simulator.delivery_log if record.bericht_id in ids]
    assert len(delivered) == 2
    assert {(record.sender_oin, record.connection_oin) for record in delivered} == {(lv_oin, lv_connection["oin"])}
