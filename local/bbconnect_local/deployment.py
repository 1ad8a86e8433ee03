"""The template's resources on moto, in this process.

`LocalDeployment` reads `template.yaml`, creates its buckets, tables, queues, functions and state
machine in moto (there is no second list of resources), runs the real ASL with moto's executing
Step Functions, and calls the real handlers in-process wherever AWS would invoke a Lambda: from a
Task state, from an SQS event source (polled here, with partial batch responses honoured and
redrive to the dead-letter queue), and for the inbound ebMS endpoint.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import logging
import os
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbconnect import runtime
from bbconnect_local import jsonpaths
from bbconnect_local.iam import enforcer
from bbconnect_local.iam.enforcer import AwsRules, Violation
from bbconnect_local.iam.roles import principals, translate
from bbconnect_local.template import Resolver, load_template, parameter_values, substitute_definition

ACCOUNT = "123456789012"
log = logging.getLogger("bbconnect.local")

# Resource types with no local counterpart: what they do on AWS is done here by other means
# (API Gateway -> the loopback mTLS server; the functions' and state machine's IAM roles -> enforced by
# `iam.enforcer` on every call; the layer -> the installed package).
NOT_EMULATED = {
    "AWS::SQS::QueuePolicy", "AWS::Serverless::LayerVersion", "AWS::Serverless::Api",
    "AWS::ApiGateway::DomainName", "AWS::ApiGateway::BasePathMapping", "AWS::ApiGateway::Account",
    "AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::KMS::Key", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard",
    "AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::CloudFormation::WaitConditionHandle",
    # Bucket policies are resource policies: the local IAM check evaluates the callers' own roles only.
    "AWS::S3::BucketPolicy",
}


class HandlerFailed(Exception):
    def __init__(self, function: str, error_type: str, message: str):
        super().__init__(f"{function}: {error_type}: {message}")
        self.function, self.error_type, self.message = function, error_type, message


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_seconds: int = 120
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{os.environ.get('AWS_DEFAULT_REGION', 'eu-west-1')}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000), 0)


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    handler_path: Path
    handler_name: str
    memory: int
    timeout: int
    sqs_sources: list[dict]
    module: Any = None
    # Fault injection (bbconnect_local.faults): when set, every invocation goes through
    # `interceptor(function, handler, event, context)` instead of calling the handler directly.
    interceptor: Any = None
    # The AWS rules of the deployment: each invocation runs with the function's own role.
    rules: AwsRules | None = None

    def load(self) -> None:
        spec = importlib.util.spec_from_file_location(f"bbconnect_function_{self.logical_id}", self.handler_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module = module

    def __call__(self, event: Any) -> Any:
        if self.module is None:
            self.load()
        context = LambdaContext(self.name, self.memory, self.timeout)
        handler = getattr(self.module, self.handler_name)
        # As on AWS: the function's own container (its settings, clients and caches) and its own role.
        with runtime.running_in(self.logical_id), self.rules.acting_as(self.logical_id) if self.rules else contextlib.nullcontext():
            if self.interceptor is not None:
                return self.interceptor(self, handler, event, context)
            return handler(event, context)


class LocalDeployment:
    def __init__(self, template_path: Path, *, root: Path | None = None, stack_name: str = "bbconnect-local", region: str = "eu-west-1",
                 parameter_overrides: dict[str, Any] | None = None, environment: dict[str, str] | None = None,
                 retry_delay_seconds: int = 1, max_pollers_per_source: int = 4):
        self.template_path = Path(template_path)
        # Where CodeUri and DefinitionUri are relative to (the template's folder unless told).
        self.root = Path(root) if root else self.template_path.parent
        self.stack_name, self.region = stack_name, region
        self.template = load_template(self.template_path)
        self.parameters = parameter_values(self.template, parameter_overrides)
        self.extra_environment = environment or {}
        self.retry_delay_seconds = retry_delay_seconds
        self.max_pollers_per_source = max_pollers_per_source
        self.physical: dict[str, dict[str, str]] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.handler_errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mock = None
        self._saved_invoke = None
        self._jsonpaths = False  # bbconnect_local.jsonpaths installed by this deployment
        self._saved_environ: dict[str, str | None] = {}
        self.rules: AwsRules | None = None
        self.container_environments: dict[str, dict[str, str]] = {}
        self.resolver = Resolver(
            self.template, self.parameters,
            {"AWS::StackName": stack_name, "AWS::Region": region, "AWS::AccountId": ACCOUNT,
             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None},
            ref=lambda name: self._attribute(name, "Ref"), get_att=self._attribute,
        )

    # ------------------------------------------------------------------ names
    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return self.physical[logical_id][attribute]
        except KeyError:
            raise KeyError(f"{logical_id}.{attribute} is not known locally") from None

    def _resources(self) -> dict[str, dict]:
        resources = {}
        for logical_id, resource in self.template["Resources"].items():
            condition = resource.get("Condition")
            if condition and not self.resolver.conditions[condition]:
                continue
            resources[logical_id] = resource
        return resources

    def _name_everything(self) -> None:
        """Physical names and ARNs are known before anything exists, so references between
        resources (functions -> state machine -> functions) resolve in any order."""
        r, a = self.region, ACCOUNT
        for logical_id, resource in self._resources().items():
            kind = resource["Type"]
            base = f"{self.stack_name}-{logical_id}"
            if kind == "AWS::S3::Bucket":
                name = base.lower()[:63]
                self.physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
            elif kind == "AWS::SQS::Queue":
                self.physical[logical_id] = {"Ref": f"https://sqs.{r}.amazonaws.com/{a}/{base}", "QueueName": base,
                                             "Arn": f"arn:aws:sqs:{r}:{a}:{base}"}
            elif kind == "AWS::DynamoDB::Table":
                self.physical[logical_id] = {"Ref": base, "Arn": f"arn:aws:dynamodb:{r}:{a}:table/{base}"}
            elif kind == "AWS::Serverless::Function":
                name = base[:64]
                self.physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:lambda:{r}:{a}:function:{name}"}
            elif kind == "AWS::Serverless::LayerVersion":
                self.physical[logical_id] = {"Ref": f"arn:aws:lambda:{r}:{a}:layer:{base}:1"}
            elif kind == "AWS::Serverless::Api":
                self.physical[logical_id] = {"Ref": "local-inbound"}
                self.physical[f"{logical_id}liveStage"] = {"Ref": "live"}
            elif kind == "AWS::Serverless::StateMachine":
                props = resource["Properties"]
                name = self.resolver.resolve(props["Name"]) if "Name" in props else base
                arn = f"arn:aws:states:{r}:{a}:stateMachine:{name}"
                self.physical[logical_id] = {"Ref": arn, "Arn": arn, "Name": name}
            elif kind == "AWS::Events::EventBus":
                name = self.resolver.resolve(resource["Properties"]["Name"])
                self.physical[logical_id] = {"Ref": name, "Name": name, "Arn": f"arn:aws:events:{r}:{a}:event-bus/{name}"}
            elif kind == "AWS::Events::Archive":
                name = (resource.get("Properties") or {}).get("ArchiveName") or base[:48]
                self.physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:events:{r}:{a}:archive/{name}"}
            elif kind == "AWS::IAM::Role":  # not created (roles are enforced, not assumed), but named
                self.physical[logical_id] = {"Ref": base[:64], "Arn": f"arn:aws:iam::{a}:role/{base[:64]}"}
            else:
                self.physical[logical_id] = {"Ref": base}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalDeployment:
        from moto import mock_aws
        from moto.awslambda.models import LambdaFunction

        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": self.region,
                           "POWERTOOLS_TRACE_DISABLED": "true"}.items():
            self._set_env(key, value)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        jsonpaths.install()  # moto compiles each JSONPath anew at every use: once is enough
        self._jsonpaths = True
        self._saved_invoke = LambdaFunction.invoke
        deployment = self

        def invoke(function_self, body, request_headers, response_headers):
            return deployment._invoke_from_moto(function_self.function_name, body, response_headers)

        LambdaFunction.invoke = invoke
        try:
            self._deploy()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self.rules is not None:
            enforcer.uninstall(self.rules)
        if self._saved_invoke is not None:
            from moto.awslambda.models import LambdaFunction

            LambdaFunction.invoke = self._saved_invoke
            self._saved_invoke = None
        if self._jsonpaths:
            jsonpaths.uninstall()
            self._jsonpaths = False
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()
        from bbconnect.service import context

        context.reset()

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _set_env(self, key: str, value: str) -> None:
        if key not in self._saved_environ:
            self._saved_environ[key] = os.environ.get(key)
        os.environ[key] = value

    # ------------------------------------------------------------------ creating resources
    def _deploy(self) -> None:

        self._name_everything()
        resources = self._resources()
        self.rules = self._roles()
        by_type: dict[str, list[str]] = {}
        for logical_id, resource in resources.items():
            by_type.setdefault(resource["Type"], []).append(logical_id)
        # Queues first (dead-letter queues before the queues that redrive to them), then the rest.
        queues = sorted(by_type.get("AWS::SQS::Queue", []), key=lambda q: "RedrivePolicy" in (resources[q].get("Properties") or {}))
        for logical_id in queues:
            self._create_queue(logical_id, resources[logical_id])
        for logical_id in by_type.get("AWS::DynamoDB::Table", []):
            self._create_table(logical_id, resources[logical_id])
        for logical_id in by_type.get("AWS::Events::EventBus", []):
            self._create_event_bus(logical_id)
        for logical_id in by_type.get("AWS::Events::Archive", []):
            self._create_archive(logical_id, resources[logical_id])
        for logical_id in by_type.get("AWS::S3::Bucket", []):
            self._create_bucket(logical_id, resources[logical_id], notifications=False)
        environment = self._function_environment(by_type.get("AWS::Serverless::Function", []), resources)
        for key, value in environment.items():
            self._set_env(key, value)
        from bbconnect.service import context

        context.reset()
        for logical_id, variables in self.container_environments.items():
            runtime.set_container_environment(logical_id, variables)
        for logical_id in by_type.get("AWS::Serverless::Function", []):
            self._create_function(logical_id, resources[logical_id], self.rules.principals[logical_id].role_arn)
        for logical_id in by_type.get("AWS::Serverless::StateMachine", []):
            self._create_state_machine(logical_id, resources[logical_id], self.rules.principals[logical_id].role_arn)
        for logical_id in by_type.get("AWS::S3::Bucket", []):
            self._create_bucket(logical_id, resources[logical_id], notifications=True)
        handled = {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Serverless::Function",
                   "AWS::Serverless::StateMachine", "AWS::Events::EventBus", "AWS::Events::Archive"}
        self.skipped = sorted(f"{lid} ({r['Type']})" for lid, r in resources.items() if r["Type"] not in handled)
        unknown = [s for s in self.skipped if s.split(" (")[1][:-1] not in NOT_EMULATED]
        if unknown:
            raise NotImplementedError(f"the local run does not know how to create: {', '.join(unknown)}")
        for function in self.functions.values():
            function.rules = self.rules
            function.load()
        # From here on every AWS call of a function or the state machine is authorised against its role.
        enforcer.install(self.rules)
        for function in self.functions.values():
            for source in function.sqs_sources:
                for n in range(source["pollers"]):
                    thread = threading.Thread(target=self._poll, args=(function, source), daemon=True,
                                              name=f"sqs-{function.logical_id}-{n}")
                    thread.start()
                    self._threads.append(thread)
        self.outputs = {name: self.resolver.resolve(spec["Value"]) for name, spec in (self.template.get("Outputs") or {}).items()}

    def _roles(self) -> AwsRules:
        """Each function's and the state machine's role, as the template deploys them after the SAM
        transform, created in moto and resolved against the local names."""
        import boto3

        found = principals(translate(self.template), resolve=self.resolver.resolve, stack_name=self.stack_name, account=ACCOUNT)
        iam = boto3.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
        for principal in {p.role_name: p for p in found.values()}.values():
            iam.create_role(RoleName=principal.role_name, AssumeRolePolicyDocument=json.dumps(trust))
        return AwsRules(found, region=self.region, account=ACCOUNT)

    @property
    def violations(self) -> list[Violation]:
        """Every call AWS would have refused so far (access denied, a limit exceeded)."""
        return list(self.rules.violations) if self.rules else []

    def _create_queue(self, logical_id: str, resource: dict) -> None:
        import boto3

        props = self.resolver.resolve(resource.get("Properties") or {})
        attributes = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = boto3.client("sqs").create_queue(QueueName=self.physical[logical_id]["QueueName"], Attributes=attributes)["QueueUrl"]
        self.physical[logical_id]["Ref"] = url

    def _create_table(self, logical_id: str, resource: dict) -> None:
        import boto3

        props = self.resolver.resolve(resource["Properties"])
        kwargs = {"TableName": self.physical[logical_id]["Ref"], "AttributeDefinitions": props["AttributeDefinitions"],
                  "KeySchema": props["KeySchema"], "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST")}
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        client = boto3.client("dynamodb")
        client.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=kwargs["TableName"], TimeToLiveSpecification=ttl)

    def _create_event_bus(self, logical_id: str) -> None:
        import boto3

        boto3.client("events").create_event_bus(Name=self.physical[logical_id]["Name"])

    def _create_archive(self, logical_id: str, resource: dict) -> None:
        """The archive, which moto fills as EventBridge does (a managed rule on its bus) and replays."""
        import boto3

        props = self.resolver.resolve(resource["Properties"])
        boto3.client("events").create_archive(
            ArchiveName=self.physical[logical_id]["Ref"], EventSourceArn=props["SourceArn"],
            Description=props.get("Description", ""), RetentionDays=int(props.get("RetentionDays", 0)),
            **({"EventPattern": json.dumps(props["EventPattern"])} if props.get("EventPattern") else {}))

    def _create_bucket(self, logical_id: str, resource: dict, *, notifications: bool) -> None:
        import boto3

        s3 = boto3.client("s3")
        name = self.physical[logical_id]["Ref"]
        props = self.resolver.resolve(resource.get("Properties") or {})
        if not notifications:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region},
                             ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled")))
            rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
            if rules:
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]} for rule in rules]})
            if props.get("PublicAccessBlockConfiguration"):
                s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
            if (props.get("VersioningConfiguration") or {}).get("Status"):
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
            return
        queue_configs = (props.get("NotificationConfiguration") or {}).get("QueueConfigurations") or []
        if queue_configs:
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": c["Queue"], "Events": [c["Event"]], **({"Filter": c["Filter"]} if "Filter" in c else {})}
                for c in queue_configs]})

    def _function_environment(self, logical_ids: list[str], resources: dict) -> dict[str, str]:
        """One interpreter runs every handler, so they share one environment: the union of the
        template's variables (they agree; only the Powertools service name differs, and the
        handlers name their service themselves) plus the local run's own settings."""
        globals_env = (((self.template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
        common: dict[str, str] = {k: str(v) for k, v in self.resolver.resolve(globals_env).items()}
        merged = dict(common)
        for logical_id in logical_ids:
            variables = (((resources[logical_id].get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
            own = {key: str(value) for key, value in self.resolver.resolve(variables).items()}
            # What the function's settings are read from: the template's variables for it, as on AWS.
            # and the variables the Lambda runtime always sets: the code knows it runs as a function
            runtime_variables = {"AWS_LAMBDA_FUNCTION_NAME": self.physical[logical_id]["Ref"],
                                 "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "LAMBDA_TASK_ROOT": "/var/task"}
            self.container_environments[logical_id] = {**common, **own, **self.extra_environment, **runtime_variables}
            for key, value in own.items():
                if key == "POWERTOOLS_SERVICE_NAME":
                    continue
                if key in merged and merged[key] != value:
                    raise ValueError(f"{logical_id} sets {key}={value!r}, another function {merged[key]!r}: "
                                     "the local run shares one process environment")
                merged[key] = value
        merged.update(self.extra_environment)
        return merged

    def _create_function(self, logical_id: str, resource: dict, role: str) -> None:
        import boto3

        props = resource["Properties"]
        globals_fn = (self.template.get("Globals") or {}).get("Function") or {}
        module, handler = props["Handler"].rsplit(".", 1)
        code_dir = self.root / props["CodeUri"]
        name = self.physical[logical_id]["Ref"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.write(code_dir / f"{module}.py", f"{module}.py")
        boto3.client("lambda").create_function(
            FunctionName=name, Runtime=props.get("Runtime", globals_fn.get("Runtime", "python3.13")), Role=role,
            Handler=props["Handler"], Code={"ZipFile": buffer.getvalue()},
            Timeout=int(self.resolver.resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
            MemorySize=int(self.resolver.resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
        )
        sources = []
        for event in (props.get("Events") or {}).values():
            if event["Type"] != "SQS":
                continue
            spec = self.resolver.resolve(event["Properties"])
            queue_arn = spec["Queue"]
            queue = next(lid for lid, p in self.physical.items() if p.get("Arn") == queue_arn)
            concurrency = int((spec.get("ScalingConfig") or {}).get("MaximumConcurrency", 2))
            sources.append({"queue_url": self.physical[queue]["Ref"], "queue_arn": queue_arn,
                            "batch_size": int(spec.get("BatchSize", 10)),
                            "partial": "ReportBatchItemFailures" in (spec.get("FunctionResponseTypes") or []),
                            "pollers": max(1, min(concurrency, self.max_pollers_per_source))})
        self.functions[logical_id] = LocalFunction(
            logical_id, name, code_dir / f"{module}.py", handler,
            int(self.resolver.resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
            int(self.resolver.resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))), sources)

    def _create_state_machine(self, logical_id: str, resource: dict, role: str) -> None:
        import boto3

        props = resource["Properties"]
        definition = (self.root / props["DefinitionUri"]).read_text(encoding="utf-8")
        substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions") or {})
        definition = substitute_definition(definition, substitutions)
        boto3.client("stepfunctions").create_state_machine(
            name=self.physical[logical_id]["Name"], definition=definition, roleArn=role, type=props.get("Type", "STANDARD"))

    # ------------------------------------------------------------------ invoking
    def function(self, logical_id: str) -> LocalFunction:
        return self.functions[logical_id]

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self.functions[logical_id](event)

    @contextlib.contextmanager
    def as_function(self, logical_id: str):
        """Do a function's work outside an invocation (a tool of the local run): in its container, with its role."""
        with runtime.running_in(logical_id), self.rules.acting_as(logical_id):
            yield

    def _invoke_from_moto(self, function_name: str, body: str | bytes, response_headers: dict) -> bytes:
        function = next((f for f in self.functions.values() if f.name == function_name), None)
        if function is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": function_name}).encode()
        try:
            self.rules.check_lambda_payload(function.logical_id, "request payload", body)
            event = json.loads(body) if body else {}
            result = json.dumps(function(event)).encode()
            self.rules.check_lambda_payload(function.logical_id, "response payload", result)
            return result
        except Exception as error:  # the Lambda error shape, so Retry/Catch match on the class name
            self._note_error(function, error)
            response_headers["x-amz-function-error"] = "Unhandled"
            # An injected crash names the error the Lambda service would report (Sandbox.Timedout, ...).
            error_type = getattr(error, "error_type", None) or type(error).__name__
            return json.dumps({"errorType": error_type, "errorMessage": str(error)}).encode()

    def _note_error(self, function: LocalFunction, error: BaseException) -> None:
        text = f"{function.logical_id}: {type(error).__name__}: {error}"
        self.handler_errors.append(text)
        log.warning("handler failed: %s\n%s", text, "".join(traceback.format_exception(error)))

    def _poll(self, function: LocalFunction, source: dict) -> None:
        """What the SQS event source mapping does: receive, invoke, delete what succeeded, let the
        rest become visible again (and go to the dead-letter queue after maxReceiveCount)."""
        import boto3

        sqs = boto3.client("sqs")
        # The event source mapping receives and deletes with the function's role.
        def as_function():
            return self.rules.acting_as(function.logical_id)

        while not self._stop.is_set():
            try:
                with as_function():
                    answer = sqs.receive_message(QueueUrl=source["queue_url"], MaxNumberOfMessages=min(source["batch_size"], 10),
                                                 AttributeNames=["All"], MessageAttributeNames=["All"])
            except Exception as error:  # the mock is going away
                if self._stop.is_set():
                    return
                log.warning("polling %s failed: %s", source["queue_url"], error)
                time.sleep(0.5)
                continue
            messages = answer.get("Messages") or []
            if not messages:
                self._stop.wait(0.05)
                continue
            event = {"Records": [{
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m.get("Attributes") or {}, "messageAttributes": m.get("MessageAttributes") or {},
                "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": source["queue_arn"],
                "awsRegion": self.region,
            } for m in messages]}
            failed: set[str] = set()
            try:
                result = function(event) or {}
                if source["partial"]:
                    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
            except Exception as error:
                self._note_error(function, error)
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                try:
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(QueueUrl=source["queue_url"], ReceiptHandle=message["ReceiptHandle"],
                                                      VisibilityTimeout=self.retry_delay_seconds)
                    else:
                        with as_function():
                            sqs.delete_message(QueueUrl=source["queue_url"], ReceiptHandle=message["ReceiptHandle"])
                except Exception as error:
                    if not self._stop.is_set():
                        log.warning("settling message on %s failed: %s", source["queue_url"], error)


def api_gateway_event(method: str, path: str, headers: dict[str, str], body: bytes, client_cert_pem: str | None) -> dict:
    """The REST API proxy event API Gateway gives a Lambda behind a mutual-TLS custom domain."""
    return {
        "resource": path, "path": path, "httpMethod": method, "headers": dict(headers),
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
        "requestContext": {"identity": {"clientCert": {"clientCertPem": client_cert_pem} if client_cert_pem else None},
                           "requestId": str(uuid.uuid4()), "stage": "live"},
    }
