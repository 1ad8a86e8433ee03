"""Starter: one batch execution per dropped file. The execution's name is derived from the object,
so a re-delivered S3 event or a second drop of identical bytes starts nothing new."""
from __future__ import annotations

import json
from urllib.parse import unquote_plus

from bbconnect.ids import batch_id_for


def dropped_files(body: str) -> list[dict]:
    """The objects an S3 event notification (as an SQS message body) announces."""
    event = json.loads(body)
    if event.get("Event") == "s3:TestEvent":
        return []
    files = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])
        if key.endswith("/") or "/attachments/" in key:
            continue  # folders and attachments arrive with their batch file, they are not batches
        files.append({"bucket": s3["bucket"]["name"], "key": key, "etag": s3["object"].get("eTag", ""),
                      "size": s3["object"].get("size", 0)})
    return files


def start(sfn, state_machine_arn: str, dropped: dict) -> tuple[str, bool]:
    """Start the execution of one dropped file: (batch id, started now?)."""
    batch_id = batch_id_for(dropped["bucket"], dropped["key"], dropped["etag"])
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=batch_id, input=json.dumps({**dropped, "batch_id": batch_id}))
        return batch_id, True
    except sfn.exceptions.ExecutionAlreadyExists:
        return batch_id, False
