"""Finalize: the batch report (JSON and CSV) and the paper list in the tenant's outbox.

Every row of the file appears once: rejected rows with their reason, accepted letters with their
final state. A chunk whose processing did not finish has its letters failed here, with the reason,
so nothing is left without a final state.
"""
from __future__ import annotations

from datetime import UTC, datetime

from bbconnect.report import accounted, counts_of, paper_csv, report_csv
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.status import Status

UNFINISHED = "processing of its GLOBE batch did not finish; see the operator's logs"


def finalize(event: dict, services: Services) -> dict:
    batch_id, tenant = event["batch_id"], event["tenant"]
    if event.get("status") == "bad_file":
        return {"batch_id": batch_id, "tenant": tenant, "status": "bad_file", "error": event.get("error"),
                "report": keys.report(tenant or "_unassigned", batch_id, "error.json")}
    source = services.work.get_json(keys.source(batch_id))
    letters: list[dict] = []
    paper_rows: list[dict] = []
    for rejection in services.work.get_json(keys.rejections(batch_id)):
        letters.append({"line": rejection["line"], "reference": rejection["reference"], "status": Status.REJECTED.value,
                        "reason": f"{rejection['code']}: {rejection['reason']}"})
    for item in services.work.get_json(keys.manifest(batch_id)):
        outcome = services.work.get_json_or_none(keys.chunk(batch_id, item["index"], "outcome.json"))
        if outcome is None:
            chunk = services.work.get_json(item["key"])
            outcome = {"letters": [{"reference": l["reference"], "line": l["line"], "status": Status.FAILED.value,
                                    "reason": UNFINISHED, "bericht_id": l["bericht_id"], "paper": False} for l in chunk["letters"]]}
            for entry in outcome["letters"]:
                services.letters.advance(tenant, entry["reference"], Status.FAILED, reason=UNFINISHED)
        for entry in outcome["letters"]:
            letters.append({"line": entry["line"], "reference": entry["reference"], "status": entry["status"],
                            "reason": entry.get("reason"), "route": entry.get("route"), "route_source": entry.get("route_source"),
                            "bericht_id": entry.get("bericht_id"),
                            "globe_batch_id": item["globe_batch_id"], "paper_copy": bool(entry.get("paper"))})
            if entry.get("paper"):
                paper_rows.append({"reference": entry["reference"], **(entry.get("address") or {}),
                                   "bundle": outcome.get("paper_bundle")})
    letters.sort(key=lambda entry: entry["line"])
    counts = counts_of(letters, source["received"])
    report = {
        "batch_id": batch_id, "tenant": tenant, "file": source["file"], "status": "completed",
        "accounted": accounted(counts), "finished_at": datetime.now(UTC).isoformat(), "counts": counts, "letters": letters,
    }
    services.outbox.put_json(keys.report(tenant, batch_id, "report.json"), report)
    services.outbox.put(keys.report(tenant, batch_id, "report.csv"), report_csv(letters), "text/csv")
    if paper_rows:
        services.outbox.put(keys.report(tenant, batch_id, "paper-list.csv"), paper_csv(paper_rows), "text/csv")
    services.batches.record_file(batch_id, status="completed", counts=counts, finished_at=report["finished_at"])
    return {"batch_id": batch_id, "tenant": tenant, "status": "completed", "counts": counts,
            "report": keys.report(tenant, batch_id, "report.json")}
