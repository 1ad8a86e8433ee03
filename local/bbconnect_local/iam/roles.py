"""The IAM roles `template.yaml` deploys, as AWS will hold them.

The template is translated offline with SAM's own translator (the `aws-sam-translator` package that
`sam build` and `sam deploy` use), so every role is what CloudFormation creates: SAM's policy templates
(S3ReadPolicy, DynamoDBCrudPolicy, ...) expanded, the statements spelled out in the template, and the
AWS managed policies SAM attaches by itself. A role's statements are then resolved with the names
the local run gave the buckets, tables, queues and state machine.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The AWS managed policies SAM attaches by itself, with their (public, stable) statements.
_SQS_EVENT_SOURCE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES: dict[str, list[dict]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [{"Effect": "Allow", "Resource": "*", "Action": [
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries"]}],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {"Effect": "Allow", "Action": _SQS_EVENT_SOURCE_ACTIONS, "Resource": "*"},
        {"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": [{"Effect": "Allow", "Resource": "*", "Action": [
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:PutLogEvents",
        "logs:GetLogEvents", "logs:FilterLogEvents"]}],
}


class _PolicyLoader:
    """What SAM asks IAM for (the managed policies' names to ARNs), answered offline."""

    def load(self) -> dict[str, str]:
        return {arn.rsplit("/", 1)[-1]: arn for arn in MANAGED_POLICIES}


_translated: dict[str, dict] = {}


def translate(template: dict) -> dict:
    """The template after the SAM transform (what CloudFormation deploys), made offline."""
    from samtranslator.translator.transform import transform

    cache_key = hashlib.sha256(json.dumps(template, sort_keys=True, default=str).encode()).hexdigest()
    if cache_key not in _translated:
        document = copy.deepcopy(template)
        for resource in document["Resources"].values():
            properties = resource.get("Properties") or {}
            for key in ("CodeUri", "DefinitionUri", "ContentUri"):
                if isinstance(properties.get(key), str):
                    properties[key] = "s3://bucket/key"  # what `sam package` puts there
        saved = os.environ.get("AWS_DEFAULT_REGION")
        os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")  # the translator asks for a region
        try:
            _translated[cache_key] = transform(document, {}, _PolicyLoader())
        finally:
            if saved is None:
                os.environ.pop("AWS_DEFAULT_REGION", None)
    return copy.deepcopy(_translated[cache_key])


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_documents(policy: Any) -> list[dict]:
    """The documents of an inline policy entry (both branches of an unresolved Fn::If)."""
    if isinstance(policy, dict) and "Fn::If" in policy:
        _, yes, no = policy["Fn::If"]
        return [doc for branch in (yes, no) for doc in policy_documents(branch)]
    if isinstance(policy, dict) and "PolicyDocument" in policy:
        return [policy["PolicyDocument"]]
    if policy is None or policy == {"Ref": "AWS::NoValue"}:
        return []
    raise ValueError(f"unexpected policy entry {policy!r}")


def role_statements(role: dict, *, resolve: Callable[[Any], Any] | None = None) -> list[dict]:
    """Every statement of a translated AWS::IAM::Role: its inline policies and its managed policies.
    With `resolve`, the intrinsic functions are evaluated (an Fn::If keeps only its chosen branch)."""
    properties = role["Properties"]
    policies = properties.get("Policies") or []
    if resolve is not None:
        policies = [resolve(p) for p in policies]
    statements = [s for policy in policies for doc in policy_documents(policy) for s in as_list(doc["Statement"])]
    for arn in properties.get("ManagedPolicyArns") or []:
        if resolve is not None:
            arn = resolve(arn)
        elif isinstance(arn, dict) and isinstance(arn.get("Fn::Sub"), str):
            arn = arn["Fn::Sub"].replace("${AWS::Partition}", "aws")
        if arn not in MANAGED_POLICIES:
            raise ValueError(f"unknown managed policy {arn}: its statements cannot be checked")
        statements += copy.deepcopy(MANAGED_POLICIES[arn])
    return statements


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per role
class Principal:
    """Who makes a call: a function's or the state machine's role, with its resolved statements."""
    logical_id: str  # the function or state machine
    role_logical_id: str
    role_name: str
    role_arn: str
    statements: tuple[dict, ...]

    def session_arn(self) -> str:
        account = self.role_arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role_name}/{self.logical_id}"


def principals(translated: dict, *, resolve: Callable[[Any], Any], stack_name: str, account: str) -> dict[str, Principal]:
    """Each function's and state machine's role, keyed by the function's / state machine's logical id."""
    found: dict[str, Principal] = {}
    resources = translated["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] not in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            continue
        role_ref = resource["Properties"].get("Role") or resource["Properties"].get("RoleArn")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise ValueError(f"{logical_id}: its role is not one the template makes ({role_ref!r})")
        role_id = role_ref["Fn::GetAtt"][0]
        role_name = f"{stack_name}-{role_id}"[:64]
        found[logical_id] = Principal(logical_id, role_id, role_name, f"arn:aws:iam::{account}:role/{role_name}",
                                      tuple(role_statements(resources[role_id], resolve=resolve)))
    return found
