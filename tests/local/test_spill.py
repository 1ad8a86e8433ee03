"""What the local run changes in moto to keep a long run bounded and S3-like (bbconnect_local.spill)."""
from __future__ import annotations

import boto3
from moto import mock_aws

REGION, ACCOUNT = "eu-west-1", "123456789012"


def test_given_an_object_being_read_when_a_put_replaces_it_then_the_read_still_gets_the_old_bytes(monkeypatch):
    from bbconnect_local import spill

    # Given the local run's S3 (moto, with spill installed) and an object a reader already has
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    spill.install()
    with mock_aws():
        from moto.s3.models import s3_backends

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="work", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="work", Key="subscriptions/list.json", Body=b'{"table": 1}')
        held = s3_backends[ACCOUNT]["aws"].buckets["work"].keys["subscriptions/list.json"]
        # When a PUT replaces it (moto disposes of the old object)
        s3.put_object(Bucket="work", Key="subscriptions/list.json", Body=b'{"table": 2}')
        # Then the reader that had it still reads the old bytes, as S3's atomic replace allows
        assert held.value == b'{"table": 1}'
        assert s3.get_object(Bucket="work", Key="subscriptions/list.json")["Body"].read() == b'{"table": 2}'
