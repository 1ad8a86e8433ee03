"""Starter: one batch execution per dropped file. The execution's name comes from the tenant and the
file's content (SHA-256), so a re-delivered S3 event, or the same bytes dropped again under any name,
starts nothing new."""
from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import unquote_plus

from bbconnect.ids import batch_id_for, tenant_of_key

_READ = 1024 * 1024


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
        dropped = {"bucket": s3["bucket"]["name"], "key": key, "etag": s3["object"].get("eTag", ""),
                   "size": s3["object"].get("size", 0)}
        if s3["object"].get("versionId"):
            dropped["version_id"] = s3["object"]["versionId"]  # the inbox is versioned: this drop's bytes
        files.append(dropped)
    return files


def content_sha256(s3, dropped: dict) -> str | None:
    """The SHA-256 of the dropped object's bytes (hex): S3's own full-object SHA-256 when the uploader
    had it computed, else read and hashed here, a megabyte at a time. None when the object is gone."""
    where = {"Bucket": dropped["bucket"], "Key": dropped["key"]}
    if dropped.get("version_id"):
        where["VersionId"] = dropped["version_id"]
    try:
        head = s3.head_object(ChecksumMode="ENABLED", **where)
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            return None
        raise
    if head.get("ChecksumSHA256") and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        return base64.b64decode(head["ChecksumSHA256"]).hex()
    digest = hashlib.sha256()
    body = s3.get_object(**where)["Body"]
    for block in iter(lambda: body.read(_READ), b""):
        digest.update(block)
    return digest.hexdigest()


def start(sfn, s3, state_machine_arn: str, dropped: dict) -> tuple[str | None, bool]:
    """Start the execution of one dropped file: (batch id, started now?). A file removed before it
    could be read starts nothing (there is nothing to take)."""
    sha256 = content_sha256(s3, dropped)
    if sha256 is None:
        return None, False
    batch_id = batch_id_for(tenant_of_key(dropped["key"]), sha256)
    execution_input = {**dropped, "sha256": sha256, "batch_id": batch_id}
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=batch_id, input=json.dumps(execution_input))
        return batch_id, True
    except sfn.exceptions.ExecutionAlreadyExists:
        return batch_id, False
