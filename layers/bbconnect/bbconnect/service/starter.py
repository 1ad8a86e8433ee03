"""Starter: one batch execution per dropped file. The execution's name comes from the tenant and the
file's content (SHA-256), so a re-delivered S3 event, or the same bytes dropped again under any name,
starts nothing new."""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from bbconnect.ids import batch_id_for, tenant_of_key
from bbconnect.service.contracts.intake import BatchStart, DroppedFile

_READ = 1024 * 1024


def dropped_files(body: str) -> list[DroppedFile]:
    """The objects an S3 event notification (as an SQS message body) announces, read with
    Powertools' S3 event class. Folders and attachments arrive with their batch file: they are not
    batches; S3's test event announces nothing."""
    event = S3Event(json.loads(body))
    if event.get("Event") == "s3:TestEvent" or "Records" not in event:
        return []
    files = []
    for record in event.records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        target = record.s3.get_object
        key = unquote_plus(target.key)
        if key.endswith("/") or "/attachments/" in key:
            continue
        files.append(DroppedFile(bucket=record.s3.bucket.name, key=key, etag=target.etag, size=int(target.get("size") or 0),
                                 version_id=target.version_id or None))
    return files


def content_sha256(s3: Any, dropped: DroppedFile | Mapping[str, Any]) -> str | None:
    """The SHA-256 of the dropped object's bytes (hex): S3's own full-object SHA-256 when the uploader
    had it computed, else read and hashed here, a megabyte at a time. None when the object is gone."""
    dropped = dropped if isinstance(dropped, DroppedFile) else DroppedFile.model_validate(dropped)
    where = {"Bucket": dropped.bucket, "Key": dropped.key}
    if dropped.version_id:
        where["VersionId"] = dropped.version_id
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


def start(sfn: Any, s3: Any, state_machine_arn: str, dropped: DroppedFile | Mapping[str, Any]) -> tuple[str | None, bool]:
    """Start the execution of one dropped file: (batch id, started now?). A file removed before it
    could be read starts nothing (there is nothing to take)."""
    dropped = dropped if isinstance(dropped, DroppedFile) else DroppedFile.model_validate(dropped)
    sha256 = content_sha256(s3, dropped)
    if sha256 is None:
        return None, False
    batch_id = batch_id_for(tenant_of_key(dropped.key), sha256)
    execution_input = BatchStart(**dropped.model_dump(), sha256=sha256, batch_id=batch_id)
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=batch_id, input=json.dumps(execution_input.dump()))
        return batch_id, True
    except sfn.exceptions.ExecutionAlreadyExists:
        return batch_id, False
