"""A whole bbconnect on one machine: the template on moto, the Logius simulator, and bbconnect's
inbound ebMS endpoint, wired together with a test PKI (two-way TLS everywhere)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

from bbconnect.limits import API_GATEWAY_PAYLOAD_BYTES
from bbconnect_local.deployment import ACCOUNT, LocalDeployment, api_gateway_event
from bbconnect_local.iam.enforcer import PayloadTooLarge, Violation
from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer
from bbconnect_local.pki import TestPKI
from bbconnect_local.simulator import LogiusSimulator, SimulatorConfig
from bbconnect_local.subscribers import SubscriberInboxes

REPO_ROOT = Path(__file__).resolve().parents[2]
LOGIUS_OIN = "00000004003214345001"
# Secrets as the deploy steps name them: under the template's CertificateSecretPrefix (default
# bbconnect/), a tenant's in its own folder; Logius' CA bundle as LogiusCaBundle's default names it.
SECRET_PREFIX = "bbconnect/"
LOGIUS_CA_SECRET = "bbconnect/logius-ca-bundle"
PROOF_SECRET = "bbconnect/proof-signing"
# Locally: long enough to upload and validate a 1000-letter batch, short enough for fault tests.
HTTP_TIMEOUT_SECONDS = 15
SUBSCRIPTION_RETRY_SECONDS = 2
# A tenant's status events go to an SQS queue in its own account; locally, the same rule
# `bbconnect ops subscribe` makes on AWS names a queue of the local account (`subscriber-<tenant>`),
# and what it delivers there lands in the tenant's inbox file (`bbconnect_local.subscribers`).
SUBSCRIBER_QUEUE_PREFIX = "subscriber-"


def simulator_config_from_file(path: Path | None) -> SimulatorConfig:
    """`{"subscribed": [bsn, ...], "subscribed_all": false, "result_codes": {bsn: code},
    "faults": {kind: probability}, "fault_seed": 0, "ack_mode": "either"}`."""
    data = json.loads(path.read_text(encoding="utf-8")) if path else {}
    return SimulatorConfig(
        subscribed=set(data.get("subscribed", [])), subscribed_all=bool(data.get("subscribed_all", False)),
        result_codes=dict(data.get("result_codes", {})),
        result_delay_seconds=float(data.get("result_delay_seconds", 0.2)),
        gzip_results=bool(data.get("gzip_results", False)),
        faults=dict(data.get("faults", {})), fault_seed=int(data.get("fault_seed", 0)),
        ack_mode=data.get("ack_mode", "either"),
    )


@dataclass
class BatchRun:
    batch_id: str
    execution_arn: str
    status: str
    output: dict | None


class LocalEnvironment:
    def __init__(self, *, config_dir: Path, simulator: SimulatorConfig | None = None, workdir: Path | None = None,
                 chunk_size: int = 1000, template: Path = REPO_ROOT / "template.yaml",
                 parameter_overrides: dict[str, Any] | None = None):
        self.config_dir = Path(config_dir)
        self.simulator_config = simulator or SimulatorConfig()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="bbconnect-local-"))
        self.chunk_size = chunk_size
        self.template = template
        self.parameter_overrides = {"ResultPollSeconds": 1, "ResultTimeoutSeconds": 120, "SendTimeoutSeconds": 900,
                                    **(parameter_overrides or {})}
        self.pki: TestPKI | None = None
        self._secrets: dict[str, bytes] = {}  # Secrets Manager: name -> value
        self._config_files: dict[str, bytes] = {}  # config bucket, under tenants/: CPAs and logos
        self._identities: dict[str, object] = {}  # the test PKI's client certificate of each OIN
        self.simulator: LogiusSimulator | None = None
        self.inbound: MutualTlsServer | None = None
        self.deployment: LocalDeployment | None = None
        # the tenants whose status events go to a (local) queue; what their rules delivered so far
        # waits in a file of the work folder each (a big run's events do not fit comfortably in memory)
        self._subscribers = SubscriberInboxes(self.workdir / "subscriber-events", ACCOUNT)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalEnvironment:
        from bbconnect_local import spill

        spill.install()  # moto's S3 objects on disk, freed memory handed back: a long run stays bounded
        try:
            self.pki = TestPKI(self.workdir / "pki")
            inbound_identity = self.pki.issue("bbconnect-inbound", client=False, server=True)
            self.inbound = MutualTlsServer(self._inbound, inbound_identity, self.pki.ca_cert_path)
            inbound_url = self.inbound.start()
            self.simulator_config.logius_oin = LOGIUS_OIN
            # A simulated timeout must outlast bbconnect's HTTP timeout, or it is only latency.
            self.simulator_config.timeout_hold_seconds = max(self.simulator_config.timeout_hold_seconds, HTTP_TIMEOUT_SECONDS + 1)
            self.simulator_config.result_endpoint = f"{inbound_url}/ebms"
            self.simulator = LogiusSimulator(self.simulator_config, self.pki)
            self.simulator.start()
            tenants = self._local_tenant_configs()
            self.deployment = LocalDeployment(
                self.template, root=REPO_ROOT,
                # As on AWS: the proofs' signing key and Logius' CA bundle are secrets (created below).
                parameter_overrides={"ProofSigningKey": f"secretsmanager:{PROOF_SECRET}", **self.parameter_overrides},
                environment={"CHUNK_SIZE": str(self.chunk_size), "LOGIUS_OINS": LOGIUS_OIN,
                             "HTTP_TIMEOUT_SECONDS": str(HTTP_TIMEOUT_SECONDS),
                             # A chunk whose subscription check could not be made asks again soon.
                             "SUBSCRIPTION_RETRY_SECONDS": str(SUBSCRIPTION_RETRY_SECONDS)},
            ).start()
            self._subscribers.install()
            spill.spill_archives(ACCOUNT, self.deployment.region, self.workdir / "event-archives")
            self._publish(tenants)
            for config in tenants.values():
                self._subscribe(config)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        if self.deployment is not None:
            self.deployment.stop()
        # after the functions stopped: an event put while they stop still goes to its tenant's inbox
        self._subscribers.uninstall()
        if self.inbound is not None:
            self.inbound.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalEnvironment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _local_tenant_configs(self) -> dict[str, dict]:
        """The tenants' configurations as given, with each connection pointed at the simulator and
        given a client certificate (with the connection's OIN) from the test PKI. Logius is told
        which senders each connection may deliver for, as it is when a CPA is made."""
        configs: dict[str, dict] = {}
        authorised: dict[str, set[str]] = {}
        for path in sorted(self.config_dir.glob("*.json")):
            config = json.loads(path.read_text(encoding="utf-8"))
            self._localise(config, path.parent)
            for connection in (config.get("connections") or {}).values():
                for sender in connection.get("senders", []):
                    organisation = (config.get("organisations") or {}).get(sender)
                    if organisation:
                        authorised.setdefault(connection["oin"], set()).add(organisation["oin"])
            configs[config["tenant"]] = config
        self.simulator_config.authorised_senders.update(authorised)
        return configs

    def _localise(self, config: dict, folder: Path) -> None:
        """One configuration made local: endpoints at the simulator, keys and CPAs as they are kept on
        AWS (secrets in Secrets Manager, CPAs in the config bucket), named as the tenant names them."""
        tenant = config["tenant"]
        for connection_id, connection in (config.get("connections") or {}).items():
            if connection["oin"] not in self._identities:  # one certificate per OIN: what a CPA names for that party
                # RSA: the signed profile (osb-rm-s) signs with it (RSA-SHA256)
                self._identities[connection["oin"]] = self.pki.issue(f"{tenant}-{connection_id}", oin=connection["oin"],
                                                                     client=True, server=False, key_type="rsa")
            identity = self._identities[connection["oin"]]
            bundle = Path(identity.cert_path).read_bytes() + Path(identity.key_path).read_bytes()
            connection["certificate"] = self._secret(f"{tenant}/{connection_id}", bundle)
            connection["endpoint"] = self.simulator.ebms_url
            connection["wus_endpoint"] = self.simulator.wus_url
            connection["logius_oin"] = LOGIUS_OIN
            if connection.get("wus_profile") == "2W-be-S":  # the simulator signs its WUS answers
                connection["logius_signing_certificate"] = self._secret(f"{tenant}/{connection_id}-logius-signing",
                                                                        Path(self.simulator.identity.cert_path).read_bytes())
            adapter = connection.get("adapter") or {}
            for field in ("ca_bundle", "certificate", "authorization"):
                if str(adapter.get(field) or "").startswith("file:"):
                    adapter[field] = self._secret(f"{tenant}/{connection_id}-adapter-{field}",
                                                  Path(adapter[field][len("file:"):]).read_bytes())
            if connection.get("cpa"):
                source = folder / connection["cpa"] if not connection["cpa"].startswith("file:") else Path(connection["cpa"][5:])
                key = f"cpa/{tenant}-{connection_id}.xml"
                self._config_files[key] = self._local_cpa(source, tenant, connection_id, our_certificate=identity.cert_pem).read_bytes()
                connection["cpa"] = key  # relative to the tenant's configuration: tenants/<key>
            else:  # no CPA file: the simulator meets it with the defaults (osb-rm, unsigned)
                self.simulator_config.default_cpa_ids.add(connection["cpa_id"])
        self._localise_event_targets(config)
        for logo in folder.rglob("*"):  # logos and other files the configuration names relatively
            if logo.is_file() and logo.suffix != ".json":
                self._config_files.setdefault(logo.relative_to(folder).as_posix(), logo.read_bytes())

    def _localise_event_targets(self, config: dict) -> None:
        """The tenant's status-event queue becomes a queue of the local account (it is in the tenant's
        own account on AWS); its webhook's secret is put in Secrets Manager in the tenant's own folder
        (a `file:`'s content, else a local API key: the named secret exists only on AWS). The webhook
        itself is not called locally (moto calls no API destination)."""
        targets = config.get("event_targets")
        if not targets:
            return
        tenant = config["tenant"]
        if targets.get("queue_arn"):
            region = os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
            targets["queue_arn"] = f"arn:aws:sqs:{region}:{ACCOUNT}:{SUBSCRIBER_QUEUE_PREFIX}{tenant}"
        auth = (targets.get("webhook") or {}).get("auth")
        if auth:
            scheme, _, name = auth["secret"].partition(":")
            value = Path(name).read_bytes() if scheme == "file" else f"local-{token_hex(16)}".encode()
            auth["secret"] = self._secret(f"{tenant}/status-webhook", value)

    def _subscribe(self, config: dict) -> None:
        """What `bbconnect ops subscribe` does for the tenant on AWS: its rule on the status-event bus,
        to its (local) queue and its webhook."""
        import boto3

        from bbconnect.adapters.event_targets import read_secret_reference, subscribe
        from bbconnect.tenants import load_tenant_config

        targets = config.get("event_targets")
        if (targets or {}).get("queue_arn"):
            self._subscribers.add(config["tenant"], targets["queue_arn"].rsplit(":", 1)[1])
        else:
            self._subscribers.discard(config["tenant"])
        if not targets:
            return
        outputs = self.outputs
        secretsmanager = boto3.client("secretsmanager")
        subscribe(boto3.client("events"), load_tenant_config(json.dumps(config).encode(), source=config["tenant"]),
                  bus_name=outputs["StatusEventBusName"], bus_arn=outputs["StatusEventBusArn"],
                  delivery_role_arn=outputs["StatusEventDeliveryRoleArn"],
                  dead_letter_arn=outputs["StatusEventDeadLetterQueueArn"],
                  read_secret=lambda reference: read_secret_reference(reference, secretsmanager))

    def subscribes(self, tenant: str) -> bool:
        """Whether the tenant's status events go to a queue (its configuration names one)."""
        return tenant in self._subscribers

    def subscriber_tenants(self) -> list[str]:
        """The tenants whose status events go to a queue."""
        return self._subscribers.tenants()

    def subscriber_events(self, tenant: str) -> list[dict]:
        """Every status event the tenant's rule delivered to its queue since the last call (or
        export), each as EventBridge delivers it, in the order they arrived. For a run of a few
        letters: a big run's go to a file (`export_subscriber_events`)."""
        return self._subscribers.take(tenant)

    def export_subscriber_events(self, tenant: str, path: Path) -> int:
        """Move every status event the tenant's rule delivered since the last call to `path` (JSON
        Lines, as EventBridge delivers them, in the order they arrived); how many."""
        return self._subscribers.export(tenant, path)

    def _secret(self, name: str, value: bytes) -> str:
        """A secret the tenant's configuration names: kept for Secrets Manager, under the template's
        CertificateSecretPrefix and the tenant's own folder."""
        full = f"{SECRET_PREFIX}{name}"
        self._secrets[full] = value
        return f"secretsmanager:{full}"

    def _publish(self, configs: dict[str, dict]) -> None:
        """Put the secrets in Secrets Manager and the configurations, CPAs and logos in the config
        bucket, where the functions read them on AWS (with their own roles)."""
        import boto3

        secrets = boto3.client("secretsmanager")
        self._secrets[LOGIUS_CA_SECRET] = Path(self.pki.ca_cert_path).read_bytes()
        self._secrets[PROOF_SECRET] = self._proof_signing_identity()
        for name, value in self._secrets.items():
            secrets.create_secret(Name=name, SecretString=value.decode("utf-8"))
        for key, data in self._config_files.items():
            self._put_config_object(f"tenants/{key}", data)
        for config in configs.values():
            self._put_config_object(f"tenants/{config['tenant']}.json", json.dumps(config, indent=2, ensure_ascii=False).encode())

    def _put_config_object(self, key: str, data: bytes) -> None:
        import boto3

        boto3.client("s3").put_object(Bucket=self.outputs["ConfigBucketName"], Key=key, Body=data)

    def put_tenant_config(self, config: dict, *, folder: Path | None = None) -> str:
        """Add or replace a tenant's configuration while the environment runs (made local as at start)."""
        config = json.loads(json.dumps(config))
        self._localise(config, folder or self.config_dir)
        for name, value in self._secrets.items():
            self._put_secret(name, value)
        for key, data in self._config_files.items():
            self._put_config_object(f"tenants/{key}", data)
        self._put_config_object(f"tenants/{config['tenant']}.json", json.dumps(config, ensure_ascii=False).encode())
        self._subscribe(config)
        return config["tenant"]

    def tenant_config(self, tenant: str) -> dict:
        """A tenant's configuration as the functions read it from the config bucket."""
        import boto3

        body = boto3.client("s3").get_object(Bucket=self.outputs["ConfigBucketName"], Key=f"tenants/{tenant}.json")["Body"]
        return json.loads(body.read())

    def remove_tenant_config(self, tenant: str) -> None:
        import boto3

        boto3.client("s3").delete_object(Bucket=self.outputs["ConfigBucketName"], Key=f"tenants/{tenant}.json")

    def _put_secret(self, name: str, value: bytes) -> None:
        import boto3

        secrets = boto3.client("secretsmanager")
        try:
            secrets.create_secret(Name=name, SecretString=value.decode("utf-8"))
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=name, SecretString=value.decode("utf-8"))

    def _proof_signing_identity(self) -> bytes:
        """An RSA key and self-signed certificate (one PEM) for signing the proofs of dispatch; on
        AWS this is a PKIoverheid signing certificate in Secrets Manager."""
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bbconnect (local)"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "bbconnect proof of dispatch")])
        now = dt.datetime.now(dt.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                       .not_valid_after(now + dt.timedelta(days=30))
                       .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                                    crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                       .sign(key, hashes.SHA256()))
        self.proof_certificate = certificate.public_bytes(serialization.Encoding.PEM)
        return self.proof_certificate + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def _local_cpa(self, source: Path, tenant: str, connection_id: str, *, our_certificate: bytes) -> Path:
        """The connection's CPA with Logius' endpoints pointed at the simulator and ours at the local
        inbound endpoint, and the parties' certificates those of the test PKI (a real CPA names the
        production hosts and the PKIoverheid certificates). The simulator gets the same CPA."""
        from bbconnect.xmlsafe import parse_xml
        from bbconnect_local.cpa_local import localised_cpa

        xml = source.read_bytes()
        ours = next((p.text.strip() for p in parse_xml(xml).iter("{*}PartyId") if p.text and p.text.strip() != LOGIUS_OIN),
                    None)
        endpoints = {LOGIUS_OIN: self.simulator.ebms_url, **({ours: f"{self.inbound.base_url}/ebms"} if ours else {})}
        certificates = {LOGIUS_OIN: self.simulator.identity.cert_pem, **({ours: our_certificate} if ours else {})}
        local = localised_cpa(xml, endpoints=endpoints, certificates=certificates)
        target = self.workdir / "cpa" / f"{tenant}-{connection_id}.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(local)
        self.simulator.register_cpa(local)
        return target

    def refresh_subscriptions(self, tenant: str, *, timeout: float = 60) -> list[dict]:
        """Ask the simulator for the tenant's bulk subscription lists and wait for the answers."""
        from bbconnect.service.context import services
        from bbconnect.service.subscriptions import bulk_list_key, request_bulk_lists

        with self.deployment.as_function("RefreshSubscriptionsFunction"):  # its work, in its container, with its role
            asked = request_bulk_lists(services(), tenant)
        deadline = time.monotonic() + timeout
        for item in asked:
            while services().work.get_or_none(bulk_list_key(item["sender_oin"])) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no subscription list arrived for {item['sender_oin']} within {timeout} s")
                time.sleep(0.2)
        return asked

    def _inbound(self, request: HttpRequest) -> HttpResponse:
        """bbconnect's inbound ebMS endpoint: what API Gateway (mutual TLS) does on AWS, with its
        limits: a request over 10 MB is refused by API Gateway, one whose Lambda event would pass
        6 MB cannot invoke the function (both are recorded: they fail the local run)."""
        if len(request.body) > API_GATEWAY_PAYLOAD_BYTES:
            self.deployment.rules.record(Violation("LimitExceeded", "InboundApi", "POST /ebms",
                                                   f"a request body of {len(request.body)} bytes: API Gateway takes at most "
                                                   f"{API_GATEWAY_PAYLOAD_BYTES}"))
            return HttpResponse(413, {"Content-Type": "application/json"}, b'{"message":"Request Too Long"}')
        event = api_gateway_event(request.method, request.path, dict(request.headers), request.body, request.client_cert_pem)
        try:
            self.deployment.rules.check_lambda_payload("ReceiveResultFunction", "request payload (the API Gateway event)",
                                                       json.dumps(event))
        except PayloadTooLarge:
            return HttpResponse(500, {"Content-Type": "application/json"}, b'{"message":"Internal server error"}')
        answer = self.deployment.invoke("ReceiveResultFunction", event)
        body = answer.get("body") or ""
        return HttpResponse(answer["statusCode"], answer.get("headers") or {}, body.encode("utf-8") if isinstance(body, str) else body)

    # ------------------------------------------------------------------ using it
    @property
    def outputs(self) -> dict[str, Any]:
        return self.deployment.outputs

    def drop(self, path: Path, tenant: str, *, name: str | None = None, attachments: list[Path] = ()) -> str:
        import boto3

        s3 = boto3.client("s3")
        bucket = self.outputs["InboxBucketName"]
        for attachment in attachments:
            s3.put_object(Bucket=bucket, Key=f"{tenant}/attachments/{attachment.name}", Body=attachment.read_bytes())
        key = f"{tenant}/{name or Path(path).name}"
        s3.put_object(Bucket=bucket, Key=key, Body=Path(path).read_bytes())
        return key

    def executions(self) -> list[dict]:
        import boto3

        sfn = boto3.client("stepfunctions")
        for _ in range(50):
            try:
                return sfn.list_executions(stateMachineArn=self.outputs["BatchStateMachineArn"])["executions"]
            except AttributeError:
                # moto 5 lists an execution that another thread is starting before it has a status
                # ('NoneType' object has no attribute 'value'); a moment later it has one
                time.sleep(0.05)
        return sfn.list_executions(stateMachineArn=self.outputs["BatchStateMachineArn"])["executions"]

    def wait_for_execution(self, key: str, *, timeout: float | None = 300, on_progress=None) -> BatchRun:
        """Wait until the execution started for `key` has finished (`timeout` None: however long it takes)."""
        import boto3

        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout if timeout is not None else None
        execution = None
        while deadline is None or time.monotonic() < deadline:
            if execution is None:
                execution = self._execution_for(key)
            if execution is not None:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if on_progress:
                    on_progress(described)
                if described["status"] != "RUNNING":
                    output = json.loads(described["output"]) if described.get("output") else None
                    return BatchRun(described["name"], described["executionArn"], described["status"], output)
            elif on_progress:
                on_progress(None)
            time.sleep(0.2)
        raise TimeoutError(f"the batch execution for {key} did not finish within {timeout} s")

    def _execution_for(self, key: str) -> dict | None:
        import boto3

        sfn = boto3.client("stepfunctions")
        for execution in self.executions():
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described.get("input") or "{}").get("key") == key:
                return execution
        return None

    def letter_statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for letter in self.letters():
            counts[letter["status"]] = counts.get(letter["status"], 0) + 1
        return counts

    def letters(self) -> list[dict]:
        """Every letter and rejected row in the letters table, each as one record (`ledger.compose`)."""
        import boto3

        from bbconnect.ledger import compose_all

        table = boto3.resource("dynamodb").Table(self.outputs["LettersTableName"])
        items: list[dict] = []
        kwargs: dict = {"ConsistentRead": True}
        while True:
            page = table.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return compose_all(items)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def outbox_object(self, key: str) -> bytes:
        import boto3

        return boto3.client("s3").get_object(Bucket=self.outputs["OutboxBucketName"], Key=key)["Body"].read()

    def outbox_keys(self, prefix: str) -> list[str]:
        import boto3

        s3 = boto3.client("s3")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.outputs["OutboxBucketName"], Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def work_keys(self, prefix: str) -> list[str]:
        import boto3

        keys: list[str] = []
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.outputs["WorkBucketName"], Prefix=prefix)
        for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def work_object(self, key: str) -> bytes:
        import boto3

        return boto3.client("s3").get_object(Bucket=self.outputs["WorkBucketName"], Key=key)["Body"].read()

    # ------------------------------------------------------------------ for fault and restart tests
    def letter_records(self, tenant: str, *, batch_id: str | None = None) -> list[dict]:
        """The tenant's letters (rejected rows included) as `letters()` composes them, one record
        each: `{"reference", "status", "batch_id"}`, optionally only those of one batch."""
        return [{"reference": item.get("reference"), "status": item.get("status"), "batch_id": item.get("batch_id")}
                for item in self.letters()
                if item.get("tenant") == tenant and (batch_id is None or item.get("batch_id") == batch_id)]

    def executions_for(self, key: str) -> list[dict]:
        """Every execution whose input names the dropped file `key` (a restart has the same input)."""
        import boto3

        sfn = boto3.client("stepfunctions")
        found = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.outputs["BatchStateMachineArn"]):
            for execution in page["executions"]:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if json.loads(described.get("input") or "{}").get("key") == key:
                    found.append(described)
        return found

    def wait_for_execution_arn(self, execution_arn: str, *, timeout: float = 300) -> BatchRun:
        """Wait until one execution (by its ARN) has finished."""
        import boto3

        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                output = json.loads(described["output"]) if described.get("output") else None
                return BatchRun(described["name"], described["executionArn"], described["status"], output)
            time.sleep(0.2)
        raise TimeoutError(f"the execution {execution_arn} did not finish within {timeout} s")

    def start_again(self, execution_arn: str, name: str) -> str:
        """Start a new execution with the input of an earlier one (what an operator does to restart
        a stopped or failed batch: its own name is taken). Returns the new execution's ARN."""
        import boto3

        sfn = boto3.client("stepfunctions")
        described = sfn.describe_execution(executionArn=execution_arn)
        return sfn.start_execution(stateMachineArn=self.outputs["BatchStateMachineArn"], name=name,
                                   input=described["input"])["executionArn"]

    def queue_depth(self, output: str) -> int:
        """Messages on a queue (an output name such as `SendDeadLetterQueueUrl`): visible, in flight
        and delayed."""
        import boto3

        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                           "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(value) for value in attributes.values())
