"""The template as AWS deploys it (after the SAM transform, made offline with SAM's own translator):
the defects that broke every batch on AWS stay fixed, and the stack is hardened.

Each test reads the transformed template, the way CloudFormation will; where a permission matters,
it is decided with the same policy evaluator the local run enforces (`bbconnect_local.iam.policy`).
"""
from __future__ import annotations

import pytest

from bbconnect_local.deployment import LocalDeployment
from bbconnect_local.iam.policy import Request, evaluate
from bbconnect_local.template import InvalidParameter, check_parameter

PROOF = "gemeente-lv/proofs/proof-0b7a3f41-6a0e-4d41-a9f0-000000000001.xml"






def _resources(deployed: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in deployed["Resources"].items() if r["Type"] == kind}


def _ref(value) -> str:
    assert isinstance(value, dict) and "Ref" in value, value
    return value["Ref"]


# ---------------------------------------------------------------------- the defects
def test_given_finalize_then_it_may_read_the_tenant_configuration(roles, named):
    config = named.physical["ConfigBucket"]["Ref"]
    decision = evaluate(roles["FinalizeFunction"].statements, Request("s3:GetObject", f"arn:aws:s3:::{config}/tenants/gemeente-lv.json"))
    assert decision.allowed, decision.reason


def test_given_await_result_in_adapter_mode_then_it_may_do_what_fetching_results_takes(roles, named):
    # The adapter path reads the tenant configuration and the adapter's certificates, stores the
    # result as a work file and records it on the GLOBE batch.
    config, work = named.physical["ConfigBucket"]["Ref"], named.physical["WorkBucket"]["Ref"]
    statements = roles["AwaitResultFunction"].statements
    needed = [
        Request("s3:GetObject", f"arn:aws:s3:::{config}/tenants/gemeente-lv.json"),
        Request("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:bbconnect/gemeente-lv/c-AbCdEf"),
        Request("s3:PutObject", f"arn:aws:s3:::{work}/results/x.xml"),
        Request("dynamodb:UpdateItem", named.physical["BatchesTable"]["Arn"]),
        Request("dynamodb:GetItem", named.physical["BatchesTable"]["Arn"]),
    ]
    assert [r.action for r in needed if not evaluate(statements, r).allowed] == []


@pytest.mark.parametrize("function", ["SendFunction", "ReceiveResultFunction"])
def test_given_task_tokens_from_child_executions_then_the_functions_may_answer_them(roles, function):
    # Task-token actions are authorised on "*" only; a statement scoped to the state machine grants nothing.
    assert evaluate(roles[function].statements, Request("states:SendTaskSuccess", "*")).allowed


def test_given_a_custom_domain_then_it_has_an_ownership_certificate_and_the_template_insists_on_it(deployed, template):
    domain = deployed["Resources"]["InboundDomain"]["Properties"]
    assert _ref(domain["OwnershipVerificationCertificateArn"]) == "InboundOwnershipVerificationCertificateArn"
    assert domain["MutualTlsAuthentication"]["TruststoreUri"] == {"Ref": "InboundTruststoreUri"}
    rule = template["Rules"]["InboundDomainIsComplete"]
    asserted = {next(iter(a["Assert"]["Fn::Not"][0]["Fn::Equals"][0].values())) for a in rule["Assertions"]}
    assert {"InboundCertificateArn", "InboundTruststoreUri", "InboundOwnershipVerificationCertificateArn"} <= asserted


def test_given_the_alarm_topic_then_its_key_is_one_cloudwatch_may_use(deployed, named):
    topic = deployed["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] != "alias/aws/sns"
    key = deployed["Resources"][_ref(topic["KmsMasterKeyId"])]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [s for s in named.resolver.resolve(key["Properties"]["KeyPolicy"]["Statement"])
                  if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert evaluate(cloudwatch, Request(action, "*", {"aws:SourceAccount": "123456789012"})).allowed, action
    policy = next(iter(_resources(deployed, "AWS::SNS::TopicPolicy").values()))["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    assert policy["PolicyDocument"]["Statement"][0]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


@pytest.mark.parametrize("name, value, valid", [
    ("ProofSigningKey", "", True),
    ("ProofSigningKey", "secretsmanager:bbconnect/proof-signing", True),
    ("ProofSigningKey", "bbconnect/proof-signing", False),
    ("LogiusCaBundle", "file:/etc/ca.pem", False),
    ("InboundTruststoreUri", "https://bucket/truststore.pem", False),
    ("LogRetentionDays", "100", False),
    ("ChunkConcurrency", "0", False),
])
def test_given_a_parameter_value_then_the_template_refuses_what_would_break_the_deploy(template, name, value, valid):
    spec = template["Parameters"][name]
    if valid:
        check_parameter(name, spec, value)
    else:
        with pytest.raises(InvalidParameter):
            check_parameter(name, spec, value)


def test_given_the_inbound_url_output_then_it_names_the_custom_domain_when_there_is_one(repo_root):
    with_domain = LocalDeployment(repo_root / "template.yaml", parameter_overrides={
        "InboundDomainName": "bbconnect.example.nl", "InboundCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/a",
        "InboundTruststoreUri": "s3://truststore/pkio.pem", "InboundOwnershipVerificationCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/b"})
    with_domain._name_everything()
    outputs = with_domain.template["Outputs"]
    assert with_domain.resolver.resolve(outputs["InboundEbmsUrl"]["Value"]) == "https://bbconnect.example.nl/ebms"
    without = LocalDeployment(repo_root / "template.yaml")
    without._name_everything()
    assert without.resolver.resolve(without.template["Outputs"]["InboundEbmsUrl"]["Value"]).endswith(".amazonaws.com/live/ebms")


def test_given_the_starter_then_it_writes_nothing(roles, named):
    # It starts executions and reads the dropped file to know it by its content; it writes no file.
    for bucket in ("InboxBucket", "OutboxBucket", "WorkBucket", "ConfigBucket"):
        arn = f"arn:aws:s3:::{named.physical[bucket]['Ref']}/gemeente-lv/x"
        assert not evaluate(roles["StarterFunction"].statements, Request("s3:PutObject", arn)).allowed, bucket


# ---------------------------------------------------------------------- hardening
def test_given_every_bucket_then_its_policy_refuses_requests_without_tls(deployed, named):
    buckets = _resources(deployed, "AWS::S3::Bucket")
    policies = {_ref(p["Properties"]["Bucket"]): p["Properties"]["PolicyDocument"]["Statement"]
                for p in _resources(deployed, "AWS::S3::BucketPolicy").values()}
    assert set(policies) == set(buckets)
    for bucket, statements in policies.items():
        statements = named.resolver.resolve(statements)
        arn = f"arn:aws:s3:::{named.physical[bucket]['Ref']}"
        for resource in (arn, f"{arn}/some/key"):
            plain = evaluate(statements, Request("s3:GetObject", resource, {"aws:SecureTransport": "false"}))
            assert plain.explicit_deny, (bucket, resource)
            assert not evaluate(statements, Request("s3:GetObject", resource, {"aws:SecureTransport": "true"})).explicit_deny


def test_given_the_outbox_then_it_is_versioned_locked_and_outlives_the_stack(deployed):
    outbox = deployed["Resources"]["OutboxBucket"]
    assert outbox["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert outbox["Properties"]["ObjectLockEnabled"] is True
    assert outbox["DeletionPolicy"] == outbox["UpdateReplacePolicy"] == "Retain"
    for rule in outbox["Properties"]["LifecycleConfiguration"]["Rules"]:
        if "ExpirationInDays" in rule:  # an expired current version must not linger as a noncurrent one
            assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1, rule["Id"]


def test_given_any_role_then_no_one_can_delete_a_proof_of_dispatch(deployed, roles, named):
    # The outbox's bucket policy denies it to every principal, whatever their own role allows.
    outbox = named.physical["OutboxBucket"]["Ref"]
    bucket_policy = next(named.resolver.resolve(p["Properties"]["PolicyDocument"]["Statement"])
                         for p in _resources(deployed, "AWS::S3::BucketPolicy").values()
                         if _ref(p["Properties"]["Bucket"]) == "OutboxBucket")
    proof = f"arn:aws:s3:::{outbox}/{PROOF}"
    for name, principal in roles.items():
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"):
            decision = evaluate([*principal.statements, *bucket_policy], Request(action, proof, {"aws:SecureTransport": "true"}))
            assert not decision.allowed, (name, action)
    # And only Fallback may lock an object, and only a proof
    lockers = [n for n, p in roles.items() if evaluate(p.statements, Request("s3:PutObjectRetention", proof)).allowed]
    assert lockers == ["FallbackFunction"]
    report = f"arn:aws:s3:::{outbox}/gemeente-lv/reports/b/report.json"
    assert not evaluate(roles["FallbackFunction"].statements, Request("s3:PutObjectRetention", report)).allowed


@pytest.mark.parametrize("table", ["LettersTable", "BatchesTable"])
def test_given_an_audit_table_then_it_is_protected_retained_and_recoverable(deployed, table):
    resource = deployed["Resources"][table]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["DeletionProtectionEnabled"] is True
    assert resource["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_given_every_function_then_it_logs_to_a_group_of_its_own_with_a_retention(deployed):
    functions = _resources(deployed, "AWS::Lambda::Function")
    assert len(functions) >= 10
    groups = set()
    for name, function in functions.items():
        group = _ref(function["Properties"]["LoggingConfig"]["LogGroup"])
        resource = deployed["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup", name
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == len(functions)


def test_given_the_inbound_api_then_it_writes_access_logs(deployed):
    (stage,) = _resources(deployed, "AWS::ApiGateway::Stage").values()
    destination = stage["Properties"]["AccessLogSetting"]["DestinationArn"]
    group = deployed["Resources"][destination["Fn::GetAtt"][0]]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "$context.identity.clientCert.subjectDN" in stage["Properties"]["AccessLogSetting"]["Format"]
    account = deployed["Resources"]["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}


def test_given_a_chunk_that_does_not_finish_then_an_alarm_fires(deployed, repo_root):
    alarms = [a["Properties"] for a in _resources(deployed, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("MetricName") == "ChunksUnfinished"]
    assert len(alarms) == 1 and alarms[0]["Namespace"] == "bbconnect"
    assert alarms[0]["Dimensions"] == [{"Name": "service", "Value": "finalize"}]
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert 'name="ChunksUnfinished"' in (repo_root / "functions" / "finalize" / "app.py").read_text(encoding="utf-8")


def _tags(resource: dict) -> dict:
    tags = (resource.get("Properties") or {}).get("Tags") or {}
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    return dict(tags)


def test_given_every_resource_that_takes_tags_then_it_carries_the_application_tag(deployed, repo_root):
    import tomllib

    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    # The stack's own tags (samconfig.toml) reach every resource CloudFormation can tag ...
    deploy = tomllib.loads((repo_root / "samconfig.toml").read_text(encoding="utf-8"))["default"]["deploy"]["parameters"]
    assert 'application="bbconnect"' in deploy["tags"]
    # ... and the template tags every one it can itself; SAM makes its event source mappings untagged.
    untagged = []
    for name, resource in deployed["Resources"].items():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("eu-west-1", resource["Type"]).schema
        if "Tags" not in schema.get("properties", {}) or resource["Type"] == "AWS::Lambda::EventSourceMapping":
            continue
        if _tags(resource).get("application") != "bbconnect":
            untagged.append(f"{name} ({resource['Type']})")
    assert untagged == []
