"""The local run authorises every AWS call against the calling function's own role, as AWS does.

(Here, not in tests/e2e: each test runs a local deployment of its own, doctored template.)

A role that lacks a permission its code needs makes the local run fail with AWS's AccessDenied,
naming the function, the action and the resource. The other e2e tests pass only when nothing was
refused (tests/conftest.py), so each of them also shows that the template's roles suffice.
"""
from __future__ import annotations

import copy

import yaml

from bbconnect_local.demo_batch import write_tax_run
from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file
from bbconnect_local.iam.enforcer import take_all_violations
from bbconnect_local.template import load_template


def _cfn_dumper():
    class Dumper(yaml.SafeDumper):
        pass

    return Dumper


def _write(template: dict, path):
    # The long forms of the intrinsic functions (Ref, Fn::GetAtt, ...) are what the loader reads too.
    path.write_text(yaml.dump(template, Dumper=_cfn_dumper(), sort_keys=False), encoding="utf-8")
    return path


def _run_with(template: dict, tmp_path):
    doctored = _write(template, tmp_path / "template.yaml")
    batch = tmp_path / "iam.jsonl"
    settings = write_tax_run(batch, 4)  # two letters digital, two on paper, as the demo's tax run
    simulator = simulator_config_from_file(None)
    simulator.subscribed.update(settings.get("subscribed", []))
    with LocalEnvironment(config_dir=REPO_ROOT / "config" / "tenants", simulator=simulator, chunk_size=50,
                          template=doctored, workdir=tmp_path / "local") as env:
        run = env.wait_for_execution(env.drop(batch, "gemeente-lv"), timeout=300)
        refused = env.deployment.violations
    take_all_violations()  # provoked on purpose: not the other tests' to report
    return run, refused


def test_given_finalize_without_its_policies_when_a_batch_runs_then_the_run_fails_with_access_denied(tmp_path):
    # Given the template with FinalizeFunction's policies removed
    template = copy.deepcopy(load_template(REPO_ROOT / "template.yaml"))
    del template["Resources"]["FinalizeFunction"]["Properties"]["Policies"]
    # When a batch runs through the local deployment of that template
    run, refused = _run_with(template, tmp_path)
    # Then Finalize is refused as on AWS, named with its role, and the batch fails
    assert run.status == "FAILED"
    assert refused and all(v.kind == "AccessDenied" and v.principal == "FinalizeFunction" for v in refused)
    assert refused[0].detail.startswith("User: arn:aws:sts::123456789012:assumed-role/bbconnect-local-FinalizeFunctionRole/"
                                        "FinalizeFunction is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::")
    assert refused[0].detail.endswith("because no identity-based policy allows the action")


def test_given_finalize_without_the_config_bucket_when_a_batch_runs_then_reading_the_tenant_configuration_is_refused(
        tmp_path):
    # Given the template as it was before: Finalize may not read the config bucket
    template = copy.deepcopy(load_template(REPO_ROOT / "template.yaml"))
    policies = template["Resources"]["FinalizeFunction"]["Properties"]["Policies"]
    template["Resources"]["FinalizeFunction"]["Properties"]["Policies"] = [
        p for p in policies if p != {"S3ReadPolicy": {"BucketName": {"Ref": "ConfigBucket"}}}]
    assert len(template["Resources"]["FinalizeFunction"]["Properties"]["Policies"]) == len(policies) - 1
    # When a batch runs
    run, refused = _run_with(template, tmp_path)
    # Then its tenant configuration is refused to Finalize, and no report is written
    assert run.status == "FAILED"
    assert {v.principal for v in refused} == {"FinalizeFunction"}
    assert "s3:GetObject on resource: arn:aws:s3:::bbconnect-local-configbucket/tenants/gemeente-lv.json" in refused[0].detail
