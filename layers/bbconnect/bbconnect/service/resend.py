"""Resend after a fix: letters that FAILED (Logius refused them for a reason the sender has since
fixed, or they were never acknowledged) go out again with the **same BatchID and BerichtID**, as
Logius asks (a letter that did arrive the first time is answered `BerichtBestaatAl`, never
delivered twice).

An operator starts it (`bbconnect ops resend`): a new execution of the batch state machine whose
Ingest, instead of reading a file, reopens the chosen FAILED letters of the original batch file
and rebuilds its chunks with the original GLOBE BatchIDs. The finished ebMS record of each such
GLOBE batch is retired (kept under another key), so the batch is sent as a new ebMS message.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from bbconnect.deadlines import deadline_for, send_timeout_seconds
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.status import Status


class ResendRefused(ValueError):
    pass


def start_resend(sfn, state_machine_arn: str, *, tenant: str, batch_id: str, references: list[str] | None = None,
                 requested_by: str = "operator", now: datetime | None = None) -> str:
    """Start the resend execution; returns its name."""
    now = now or datetime.now(UTC)
    name = f"resend-{now:%Y%m%d%H%M%S}-{re.sub(r'[^A-Za-z0-9_-]', '-', batch_id)}"[:80]
    body = {"resend_of": batch_id, "tenant": tenant, "references": sorted(set(references)) if references else None,
            "requested_by": requested_by, "batch_id": name, "key": f"{tenant}/resend-of-{batch_id}", "bucket": ""}
    sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(body))
    return name


def ingest_resend(event: dict, services: Services, *, timing: dict) -> dict:
    """Ingest for a resend execution: reopen the chosen FAILED letters, chunk them as before."""
    original, tenant, batch_id = event["resend_of"], event["tenant"], event["batch_id"]
    wanted = set(event["references"]) if event.get("references") else None
    manifest_in = services.work.get_json_or_none(keys.manifest(original))
    if manifest_in is None:
        raise ResendRefused(f"batch {original} is unknown (or its work files have expired)")
    now = datetime.now(UTC)
    config = services.configs.get(tenant)
    manifest, skipped, deadlines = [], [], []
    for item in manifest_in:
        chunk = services.work.get_json(item["key"])
        if chunk["tenant"] != tenant:
            raise ResendRefused(f"batch {original} does not belong to tenant {tenant!r}")
        candidates = [l for l in chunk["letters"] if wanted is None or l["reference"] in wanted]
        views = {l["reference"]: services.letters.get(tenant, l["reference"]) or {} for l in candidates}
        moved = [l for l in candidates if views[l["reference"]].get("batch_id") == batch_id]  # a retried resend
        failed = [l for l in candidates if views[l["reference"]].get("batch_id") == original
                  and views[l["reference"]].get("status") == Status.FAILED.value]
        if not failed and not moved:
            continue
        if failed and not moved and not services.batches.retire_globe(chunk["globe_batch_id"], f"before-{batch_id}"):
            skipped.extend(l["reference"] for l in failed)  # still being delivered: resend it later
            continue
        reopened = moved + [l for l in failed if services.letters.reopen_for_resend(
            tenant, l["reference"], from_batch_id=original, resend_batch_id=batch_id,
            requested_by=event.get("requested_by", "operator"),
            earlier=[step for step in views[l["reference"]].get("history", []) if step["status"] != Status.ACCEPTED.value])]
        if not reopened:
            continue
        services.letters.record_chunks(tenant, batch_id, [{
            "index": chunk["index"], "globe_batch_id": chunk["globe_batch_id"], "sender": chunk["sender"],
            "stream": chunk["stream"], "letters": reopened}])
        # status events: the letters taken up again are ACCEPTED under the resend's batch id
        letter_events.resend_taken(services, tenant=tenant, batch_id=batch_id, original=original, chunk=chunk,
                                   letters=reopened, at=now)
        key = keys.chunk(batch_id, chunk["index"], "letters.json")
        # The resend has a deadline of its own, from now: the first one may well have passed.
        deadline = deadline_for(now, config.streams[chunk["stream"]].digital_deadline)
        deadlines.append(deadline)
        services.work.put_json(key, {**chunk, "batch_id": batch_id, "letters": reopened, "resend_of": original,
                                     "deadline": deadline.isoformat()})
        manifest.append({"index": chunk["index"], "key": key, "globe_batch_id": chunk["globe_batch_id"], "letters": len(reopened)})
    received = sum(item["letters"] for item in manifest)
    source = services.work.get_json(keys.source(original))
    services.work.put_json(keys.rejections(batch_id), [])
    services.work.put_json(keys.manifest(batch_id), manifest)
    services.work.put_json(keys.source(batch_id), {"tenant": tenant, "file": source["file"], "received": received,
                                                   "accepted": received, "rejected": 0, "resend_of": original,
                                                   "skipped_in_flight": skipped, "ingested_at": now.isoformat()})
    timing = {**timing, "send_timeout_seconds": send_timeout_seconds(deadlines, now, floor=services.settings.send_timeout_seconds)}
    services.batches.record_file(batch_id, tenant=tenant, file=source["file"], status="processing", resend_of=original,
                                 received=received, accepted=received, rejected=0, chunks=len(manifest))
    return {"batch_id": batch_id, "tenant": tenant, "file": source["file"], "timing": timing, "status": "ok",
            "received": received, "accepted": received, "rejected": 0, "chunk_count": len(manifest),
            "resend_of": original, "skipped_in_flight": skipped,
            "manifest": {"bucket": services.work.bucket, "key": keys.manifest(batch_id)}}
