"""The state a local run leaves behind, on disk, so `bbconnect ops --local DIR` can look at it after
the run's in-process moto is gone.

`save_snapshot(outputs, DIR)` writes `DIR/state/`:

- `snapshot.json`: format version, when, the region;
- `outputs.json`: the stack outputs of the run;
- `dynamodb/<output>.json`: each table's key schema and secondary indexes, and
  `dynamodb/<output>.items.jsonl`: every item, one `{"Item": <DynamoDB JSON>}` a line (the shape of
  a DynamoDB export);
- `s3/<output>/...`: every object of the inbox, work, outbox and config buckets, with
  `s3/manifest.json` naming each object's key, file, content type and metadata;
- `sqs.json`: each queue's attributes, and the messages on the dead-letter queues, peeked (received
  and made visible again at once, so a running pipeline loses nothing);
- `config/`: the tenant configurations the run used, when given.

`load_snapshot(DIR)` creates the tables (same key schema and indexes), buckets and queues in the
moto mock that is running and fills them; it returns the outputs (queue URLs as moto gave them).

The snapshot holds what the buckets hold, and the inbox and work files of a run name BSNs: the
folder is made readable by its owner only. The letters and batches tables hold none.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = 1
STATE = "state"
TABLE_OUTPUTS = ("LettersTableName", "BatchesTableName")
BUCKET_OUTPUTS = ("InboxBucketName", "WorkBucketName", "OutboxBucketName", "ConfigBucketName")
DEAD_LETTER_OUTPUTS = ("IntakeDeadLetterQueueUrl", "SendDeadLetterQueueUrl")
SOURCE_QUEUE_OUTPUTS = ("IntakeQueueUrl", "SendQueueUrl")
# The queue attributes a restored queue gets (the rest are counters or moto's own).
QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
                    "MaximumMessageSize")
PEEK_SECONDS = 30


class SnapshotError(Exception):
    pass


def state_dir(directory: Path) -> Path:
    return Path(directory) / STATE


def has_snapshot(directory: Path) -> bool:
    return (state_dir(directory) / "snapshot.json").is_file()


# ---------------------------------------------------------------------------------------- saving
def save_snapshot(env_outputs: dict, directory: Path, *, config_dir: Path | None = None,
                  include_source_queues: bool = False, region: str | None = None) -> Path:
    """Dump the run's tables, buckets, dead-letter queues and outputs into `directory/state/` (the
    folder is replaced as a whole, so a reader never sees half a snapshot). Uses the boto3 default
    session: call it while the run's moto mock is active.

    `include_source_queues` also dumps the intake and send queues; only safe when no pipeline polls
    them (peeking counts as a receive), as in `bbconnect ops --local`."""
    import boto3

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = state_dir(directory)
    work = directory / f".{STATE}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        region = session.region_name or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
        _write_json(work / "snapshot.json", {"format": FORMAT, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                             "region": region})
        _write_json(work / "outputs.json", dict(env_outputs))
        _save_tables(session.client("dynamodb", region_name=region), env_outputs, work / "dynamodb")
        _save_buckets(session.client("s3", region_name=region), env_outputs, work / "s3")
        queues = DEAD_LETTER_OUTPUTS + (SOURCE_QUEUE_OUTPUTS if include_source_queues else ())
        _save_queues(session.client("sqs", region_name=region), env_outputs, work / "sqs.json", dump=queues)
        if config_dir is not None and Path(config_dir).is_dir():
            (work / "config").mkdir()
            for path in sorted(Path(config_dir).glob("*.json")):
                shutil.copyfile(path, work / "config" / path.name)
        old = directory / f".{STATE}.old-{os.getpid()}"
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(work, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


def _scan_all(client, table: str) -> list[dict]:
    """Every item, DynamoDB JSON. A scan during a live run may meet moto's table changing under it:
    then it starts over (a few times)."""
    for attempt in range(5):
        try:
            items: list[dict] = []
            kwargs: dict = {"TableName": table}
            while True:
                page = client.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except RuntimeError:
            if attempt == 4:
                raise
            time.sleep(0.2)
    return []


def _save_tables(client, outputs: dict, folder: Path) -> None:
    folder.mkdir()
    for output in TABLE_OUTPUTS:
        name = outputs.get(output)
        if not name:
            continue
        table = client.describe_table(TableName=name)["Table"]
        description = {
            "name": name,
            "key_schema": table["KeySchema"],
            "attribute_definitions": table["AttributeDefinitions"],
            "global_secondary_indexes": [
                {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
                for index in table.get("GlobalSecondaryIndexes") or []
            ],
        }
        _write_json(folder / f"{output}.json", description)
        with open(folder / f"{output}.items.jsonl", "w", encoding="utf-8") as handle:
            for item in _scan_all(client, name):
                handle.write(json.dumps({"Item": item}, ensure_ascii=False) + "\n")


def _object_file(key: str) -> str:
    """The object's key as a relative path when it is a plain one, else a hash of it (a key may be
    anything: `..`, a leading `/`, empty segments)."""
    parts = PurePosixPath(key).parts
    if key and not key.startswith("/") and not key.endswith("/") and "//" not in key \
            and all(part not in ("", ".", "..") and len(part) < 200 for part in parts) and "\\" not in key and "\0" not in key:
        return key
    return "_hashed/" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _save_buckets(s3, outputs: dict, folder: Path) -> None:
    folder.mkdir()
    manifest: dict[str, dict] = {}
    for output in BUCKET_OUTPUTS:
        bucket = outputs.get(output)
        if not bucket:
            continue
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key = item["Key"]
                answer = s3.get_object(Bucket=bucket, Key=key)
                file = _object_file(key)
                path = folder / output / file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(answer["Body"].read())
                objects.append({"key": key, "file": file, "size": item["Size"],
                                "content_type": answer.get("ContentType") or "binary/octet-stream",
                                "metadata": answer.get("Metadata") or {},
                                "last_modified": item["LastModified"].isoformat()})
        manifest[output] = {"bucket": bucket, "objects": objects}
    _write_json(folder / "manifest.json", manifest)


def peek_messages(sqs, url: str) -> list[dict]:
    """Every message on the queue, not consumed: each is received (hidden for a moment, so the next
    receive returns the others) and then made visible again at once."""
    seen: dict[str, dict] = {}
    handles: list[str] = []
    try:
        while True:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=PEEK_SECONDS,
                                         WaitTimeSeconds=0, AttributeNames=["All"], MessageAttributeNames=["All"])
            messages = answer.get("Messages") or []
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                seen.setdefault(message["MessageId"], message)
    finally:
        for handle in handles:
            try:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
            except Exception:  # noqa: S110 - the message shows again when its visibility times out anyway
                pass
    return [{
        "message_id": message["MessageId"],
        "body": message["Body"],
        "message_attributes": _sendable_attributes(message.get("MessageAttributes") or {}),
        "attributes": {k: v for k, v in (message.get("Attributes") or {}).items()
                       if k in ("SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp")},
    } for message in seen.values()]


def _sendable_attributes(attributes: dict) -> dict:
    out = {}
    for name, value in attributes.items():
        kept = {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if value.get(k) is not None}
        if isinstance(kept.get("BinaryValue"), (bytes, bytearray)):
            import base64

            kept["BinaryValue"] = {"base64": base64.b64encode(kept["BinaryValue"]).decode()}
        out[name] = kept
    return out


def _restorable_attributes(attributes: dict) -> dict:
    out = {}
    for name, value in attributes.items():
        value = dict(value)
        if isinstance(value.get("BinaryValue"), dict):
            import base64

            value["BinaryValue"] = base64.b64decode(value["BinaryValue"]["base64"])
        out[name] = value
    return out


def _save_queues(sqs, outputs: dict, path: Path, *, dump: tuple[str, ...]) -> None:
    queues: dict[str, dict] = {}
    for output in DEAD_LETTER_OUTPUTS + SOURCE_QUEUE_OUTPUTS:
        url = outputs.get(output)
        if not url:
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes") or {}
        redrive = attributes.get("RedrivePolicy")
        queues[output] = {
            "url": url, "name": url.rstrip("/").rsplit("/", 1)[-1], "arn": attributes.get("QueueArn"),
            "attributes": {k: attributes[k] for k in QUEUE_ATTRIBUTES if k in attributes},
            "redrive_policy": json.loads(redrive) if redrive else None,
            "messages": peek_messages(sqs, url) if output in dump else None,
        }
    _write_json(path, queues)


# ---------------------------------------------------------------------------------------- loading
def load_snapshot(directory: Path) -> dict:
    """Restore `directory/state/` into the moto mock that is running (`moto.mock_aws`): tables with
    the same key schema and indexes and every item, buckets and objects, queues (redrive policies
    included) and their saved messages. Returns the outputs, with the queue URLs moto gave."""
    import boto3

    folder = state_dir(directory)
    if not (folder / "snapshot.json").is_file():
        raise SnapshotError(f"no snapshot in {folder} (a local run writes one there)")
    meta = json.loads((folder / "snapshot.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise SnapshotError(f"{folder} has snapshot format {meta.get('format')!r}; this bbconnect reads format {FORMAT}")
    region = meta.get("region") or "eu-west-1"
    outputs = json.loads((folder / "outputs.json").read_text(encoding="utf-8"))
    _load_tables(boto3.client("dynamodb", region_name=region), folder / "dynamodb")
    _load_buckets(boto3.client("s3", region_name=region), folder / "s3", region)
    urls = _load_queues(boto3.client("sqs", region_name=region), folder / "sqs.json")
    outputs.update(urls)
    return outputs


def snapshot_region(directory: Path) -> str:
    meta = json.loads((state_dir(directory) / "snapshot.json").read_text(encoding="utf-8"))
    return meta.get("region") or "eu-west-1"


def _load_tables(client, folder: Path) -> None:
    for description_path in sorted(folder.glob("*.json")):
        description = json.loads(description_path.read_text(encoding="utf-8"))
        kwargs: dict = {"TableName": description["name"], "KeySchema": description["key_schema"],
                        "AttributeDefinitions": description["attribute_definitions"], "BillingMode": "PAY_PER_REQUEST"}
        if description.get("global_secondary_indexes"):
            kwargs["GlobalSecondaryIndexes"] = description["global_secondary_indexes"]
        client.create_table(**kwargs)
        items_path = description_path.with_name(description_path.name.removesuffix(".json") + ".items.jsonl")
        if not items_path.is_file():
            continue
        batch: list[dict] = []
        with open(items_path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    batch.append({"PutRequest": {"Item": json.loads(line)["Item"]}})
                if len(batch) == 25:
                    _write_batch(client, description["name"], batch)
                    batch = []
        if batch:
            _write_batch(client, description["name"], batch)


def _write_batch(client, table: str, requests: list[dict]) -> None:
    pending = {table: requests}
    while pending:
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _load_buckets(s3, folder: Path, region: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for output, content in manifest.items():
        bucket = content["bucket"]
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        root = (folder / output).resolve()
        for item in content["objects"]:
            path = (root / item["file"]).resolve()
            if root not in path.parents:
                raise SnapshotError(f"the snapshot's manifest names a file outside its folder: {item['file']!r}")
            s3.put_object(Bucket=bucket, Key=item["key"], Body=path.read_bytes(),
                          ContentType=item.get("content_type") or "binary/octet-stream", Metadata=item.get("metadata") or {})


def _load_queues(sqs, path: Path) -> dict[str, str]:
    queues = json.loads(path.read_text(encoding="utf-8"))
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for output, queue in queues.items():  # first every queue, then the redrive policies that name them
        url = sqs.create_queue(QueueName=queue["name"], Attributes=dict(queue.get("attributes") or {}))["QueueUrl"]
        urls[output] = url
        arns[queue.get("arn") or ""] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for output, queue in queues.items():
        policy = queue.get("redrive_policy")
        if policy:
            policy = {**policy, "deadLetterTargetArn": arns.get(policy.get("deadLetterTargetArn"), policy.get("deadLetterTargetArn"))}
            sqs.set_queue_attributes(QueueUrl=urls[output], Attributes={"RedrivePolicy": json.dumps(policy)})
        for message in queue.get("messages") or []:
            kwargs: dict = {"QueueUrl": urls[output], "MessageBody": message["body"]}
            if message.get("message_attributes"):
                kwargs["MessageAttributes"] = _restorable_attributes(message["message_attributes"])
            sqs.send_message(**kwargs)
    return urls
