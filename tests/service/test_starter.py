"""Starter: a dropped file is known by its tenant and its content (SHA-256), never by its name or
its ETag: the same bytes dropped again, under any name, start nothing new."""
from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from bbconnect.service.starter import content_sha256, dropped_files, start

BUCKET = "inbox"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="batch", roleArn="arn:aws:iam::123456789012:role/sfn", definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
        yield s3, sfn, arn


def _drop(s3, key: str, body: bytes, **extra) -> dict:
    answer = s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
    return {"bucket": BUCKET, "key": key, "etag": answer["ETag"], "size": len(body), "version_id": answer["VersionId"]}


def test_given_the_same_bytes_under_two_names_when_started_then_one_execution_runs(aws):
    s3, sfn, arn = aws
    body = b'{"reference": "r1"}\n'
    first, started = start(sfn, s3, arn, _drop(s3, "gemeente-lv/run.jsonl", body))
    again, started_again = start(sfn, s3, arn, _drop(s3, "gemeente-lv/run (copy).jsonl", body))
    assert started and not started_again and first == again
    assert first == "gemeente-lv-" + hashlib.sha256(body).hexdigest()[:32]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_given_other_bytes_or_another_tenant_when_started_then_each_runs(aws):
    s3, sfn, arn = aws
    a, _ = start(sfn, s3, arn, _drop(s3, "gemeente-lv/run.jsonl", b"one\n"))
    b, _ = start(sfn, s3, arn, _drop(s3, "gemeente-lv/run.jsonl", b"two\n"))  # the same name, new content
    c, _ = start(sfn, s3, arn, _drop(s3, "cgm/run.jsonl", b"one\n"))
    assert len({a, b, c}) == 3


def test_given_an_upload_with_s3s_own_sha256_then_it_is_used_without_reading_the_file(aws):
    s3, _, _ = aws
    body = b"x" * 1000
    dropped = _drop(s3, "t/f.jsonl", body, ChecksumAlgorithm="SHA256")
    assert content_sha256(s3, dropped) == hashlib.sha256(body).hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key="t/f.jsonl", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(body).hexdigest()


def test_given_a_version_overwritten_before_the_starter_reads_it_then_the_dropped_version_is_hashed(aws):
    s3, _, _ = aws
    first = _drop(s3, "t/f.jsonl", b"first\n")
    _drop(s3, "t/f.jsonl", b"second\n")
    assert content_sha256(s3, first) == hashlib.sha256(b"first\n").hexdigest()


def test_given_a_file_removed_before_it_is_read_then_nothing_starts(aws):
    s3, sfn, arn = aws
    dropped = {"bucket": BUCKET, "key": "t/gone.jsonl", "etag": "x", "size": 1}
    assert start(sfn, s3, arn, dropped) == (None, False)


def test_given_an_s3_event_then_the_dropped_version_is_taken_along():
    body = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {
        "key": "gemeente-lv/a+b.jsonl", "eTag": "e", "size": 3, "versionId": "v1"}}}]})
    assert [f.dump() for f in dropped_files(body)] == [
        {"bucket": BUCKET, "key": "gemeente-lv/a b.jsonl", "etag": "e", "size": 3, "version_id": "v1"}]
