"""What AWS enforces and moto does not, enforced in the local run.

On AWS every Lambda calls AWS with its own role, and every call is authorised against that role's
policies. Locally all handlers run in one process on moto, which authorises nothing. `AwsRules`
closes the gap:

- **Who is calling.** The local run says which function (or the state machine) is working, in a
  context variable that follows the work into the threads it starts. A call made outside any of
  them is the harness's own (a test, the CLI) and is not authorised.
- **IAM.** Every botocore call is turned into the IAM requests AWS would authorise
  (`iam.requests`), and each is evaluated against the caller's role as the template deploys it
  (`iam.roles`, `iam.policy`). A request the role does not allow fails as on AWS, with
  `AccessDenied`, and is recorded.
- **Limits.** A Step Functions execution's input and a task's output (256 KiB), an SQS message
  (256 KiB: the size of the state that sends it), and a Standard execution's history (25,000
  events, counted for each chunk's child execution on its own, as AWS does for a Distributed
  Map). Lambda's 6 MB payloads and API Gateway's request size are checked where the local run
  invokes a handler (`deployment`, `environment`).

Every refusal is kept in `violations`: a local run with one has not shown that it works on AWS, and
the CLI and the end-to-end tests fail on it, whatever the code made of the refusal.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bbconnect import limits
from bbconnect_local.iam.policy import Decision, Request, evaluate
from bbconnect_local.iam.requests import authorization_requests, iam_prefix
from bbconnect_local.iam.roles import Principal

HISTORY_EVENT_LIMIT = limits.HISTORY_EVENTS  # events in one Standard execution's history
LAMBDA_SYNC_PAYLOAD_LIMIT = limits.LAMBDA_SYNC_PAYLOAD_BYTES  # a synchronous invocation's request and its response
STATE_DATA_LIMIT = limits.STATE_DATA_BYTES  # a state's data, an execution's input, a task's output
SQS_MESSAGE_LIMIT = STATE_DATA_LIMIT  # SQS takes up to 1 MiB now, but our messages are sent from states of at most 256 KiB
SQS_BATCH_LIMIT = STATE_DATA_LIMIT

_caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("bbconnect_local_caller", default=None)
_history: contextvars.ContextVar[_HistoryCount | None] = contextvars.ContextVar("bbconnect_local_history", default=None)
_active: AwsRules | None = None
_every: weakref.WeakSet[AwsRules] = weakref.WeakSet()  # every deployment's rules still in memory
_install_lock = threading.Lock()
_originals: dict[str, Any] = {}


@dataclass(frozen=True)
class Violation:
    kind: str  # "AccessDenied" or "LimitExceeded"
    principal: str  # the function or state machine, or "harness"
    operation: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.principal} {self.operation}: {self.detail}"


class _HistoryCount:
    def __init__(self, name: str):
        self.name = name
        self.events = 0
        self.reported = False


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes):
        return len(value)
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    return len(value.encode("utf-8"))


def _client_error(code: str, message: str, operation: str, status: int = 400):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


_ACCESS_DENIED_CODE = {"s3": "AccessDenied", "sqs": "AccessDenied"}


class AwsRules:
    """The IAM roles and AWS limits of one local deployment, enforced while it runs."""

    def __init__(self, principals: dict[str, Principal], *, region: str, account: str):
        self.principals = principals
        self.by_role_arn = {p.role_arn: p for p in principals.values()}
        self.region, self.account = region, account
        self.violations: list[Violation] = []
        self.calls: Counter[tuple[str, str]] = Counter()  # (caller, IAM action) -> how often authorised
        self._lock = threading.Lock()
        self._secret_arns: dict[str, str] = {}
        _every.add(self)

    # ------------------------------------------------------------------ who is calling
    @contextlib.contextmanager
    def acting_as(self, logical_id: str) -> Iterator[Principal]:
        """Everything done inside (and in the threads it starts) is done with this role."""
        principal = self.principals[logical_id]
        token = _caller.set(principal)
        try:
            yield principal
        finally:
            _caller.reset(token)

    def record(self, violation: Violation) -> None:
        with self._lock:
            self.violations.append(violation)

    def take_violations(self) -> list[Violation]:
        with self._lock:
            taken, self.violations = self.violations, []
        return taken

    # ------------------------------------------------------------------ IAM
    @staticmethod
    @lru_cache(maxsize=65536)
    def _decide(principal: Principal, action: str, resource: str) -> Decision:
        return evaluate(principal.statements, Request(action, resource, {"aws:SecureTransport": "true"}))

    def _secret_arn(self, name: str) -> str:
        """The ARN of a secret named by name (its random suffix is part of it), as the harness sees it."""
        if name not in self._secret_arns:
            import boto3

            def describe() -> str:
                try:
                    return boto3.client("secretsmanager", region_name=self.region).describe_secret(SecretId=name)["ARN"]
                except Exception:  # no such secret: authorise against the name, as AWS would answer 403 or 404
                    return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{name}"

            self._secret_arns[name] = contextvars.Context().run(describe)  # as the harness, not the caller
        return self._secret_arns[name]

    def authorise(self, signing_name: str, operation: str, params: dict) -> None:
        principal = _caller.get()
        self._check_limits(principal, signing_name, operation, params)
        if principal is None:
            return
        requests = authorization_requests(signing_name, operation, params, region=self.region, account=self.account,
                                          secret_arn=self._secret_arn)
        for request in requests:
            decision = self._decide(principal, request.action, request.resource)
            with self._lock:
                self.calls[(principal.logical_id, request.action)] += 1
            if not decision.allowed:
                message = (f"User: {principal.session_arn()} is not authorized to perform: {request.action} "
                           f"on resource: {request.resource} {decision.reason}")
                self.record(Violation("AccessDenied", principal.logical_id, operation, message))
                service = iam_prefix(signing_name)
                raise _client_error(_ACCESS_DENIED_CODE.get(service, "AccessDeniedException"), message, operation, 403)

    # ------------------------------------------------------------------ limits
    def _limit(self, principal: Principal | None, operation: str, code: str, detail: str) -> None:
        who = principal.logical_id if principal else "harness"
        self.record(Violation("LimitExceeded", who, operation, detail))
        raise _client_error(code, detail, operation)

    def _check_limits(self, principal: Principal | None, signing_name: str, operation: str, params: dict) -> None:
        service = iam_prefix(signing_name)
        if service == "sqs" and operation == "SendMessage":
            size = _size(params.get("MessageBody")) + _attributes_size(params.get("MessageAttributes"))
            if size > SQS_MESSAGE_LIMIT:
                self._limit(principal, operation, "InvalidParameterValue",
                            f"an SQS message of {size} bytes: at most {SQS_MESSAGE_LIMIT} bytes")
        elif service == "sqs" and operation == "SendMessageBatch":
            sizes = [_size(e.get("MessageBody")) + _attributes_size(e.get("MessageAttributes")) for e in params.get("Entries") or []]
            if any(size > SQS_MESSAGE_LIMIT for size in sizes) or sum(sizes) > SQS_BATCH_LIMIT:
                self._limit(principal, operation, "BatchRequestTooLong",
                            f"an SQS batch of {sum(sizes)} bytes (largest message {max(sizes)}): at most {SQS_BATCH_LIMIT} bytes")
        elif service == "states" and operation == "StartExecution" and _size(params.get("input")) > STATE_DATA_LIMIT:
            self._limit(principal, operation, "InvalidExecutionInput",
                        f"an execution input of {_size(params.get('input'))} bytes: at most {STATE_DATA_LIMIT} bytes")
        elif service == "states" and operation == "SendTaskSuccess" and _size(params.get("output")) > STATE_DATA_LIMIT:
            self._limit(principal, operation, "InvalidOutput",
                        f"a task output of {_size(params.get('output'))} bytes: at most {STATE_DATA_LIMIT} bytes")
        elif service == "lambda" and operation == "Invoke" and _size(params.get("Payload")) > LAMBDA_SYNC_PAYLOAD_LIMIT:
            self._limit(principal, operation, "RequestTooLargeException",
                        f"a Lambda payload of {_size(params.get('Payload'))} bytes: at most {LAMBDA_SYNC_PAYLOAD_LIMIT} bytes")

    def check_lambda_payload(self, function: str, what: str, payload: Any) -> None:
        """A synchronous invocation's request or response beyond 6 MB fails on AWS."""
        size = _size(payload)
        if size > LAMBDA_SYNC_PAYLOAD_LIMIT:
            detail = f"the {what} of {size} bytes exceeds Lambda's {LAMBDA_SYNC_PAYLOAD_LIMIT} bytes for a synchronous invocation"
            self.record(Violation("LimitExceeded", function, "Invoke", detail))
            raise PayloadTooLarge(detail)

    def count_history_event(self) -> None:
        counter = _history.get()
        if counter is not None:
            counter.events += 1

    def history_exceeded(self) -> str | None:
        """The execution (or chunk) whose history has passed the limit, once."""
        counter = _history.get()
        if counter is None or counter.events <= HISTORY_EVENT_LIMIT or counter.reported:
            return None
        counter.reported = True
        detail = (f"the execution history of {counter.name} reached {counter.events} events: a Standard execution "
                  f"fails at {HISTORY_EVENT_LIMIT}")
        self.record(Violation("LimitExceeded", "BatchStateMachine", "History", detail))
        return detail


class PayloadTooLarge(Exception):
    """What Lambda answers a synchronous invocation whose request or response is over 6 MB."""
    error_type = "Lambda.RequestTooLargeException"


def _attributes_size(attributes: dict | None) -> int:
    total = 0
    for name, value in (attributes or {}).items():
        total += len(name.encode()) + _size(value.get("DataType")) + _size(value.get("StringValue")) + _size(value.get("BinaryValue"))
    return total


# ---------------------------------------------------------------------- installing the checks
def current_rules() -> AwsRules | None:
    return _active


def take_all_violations() -> list[Violation]:
    """What any local deployment in this process had refused and nobody has taken yet."""
    return [violation for rules in list(_every) for violation in rules.take_violations()]


def install(rules: AwsRules) -> None:
    """Route botocore calls, thread starts and moto's Step Functions interpreter through `rules`."""
    global _active
    with _install_lock:
        if _active is not None and _active is not rules:
            raise RuntimeError("another local deployment's AWS rules are installed: one local run at a time")
        _active = rules
        if _originals:
            return
        import botocore.client
        from moto.stepfunctions.parser.asl.component.state import state as state_module
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as distributed,
        )
        from moto.stepfunctions.parser.asl.eval.event import event_manager
        from moto.stepfunctions.parser.backend import execution_worker

        _originals["api_call"] = botocore.client.BaseClient._make_api_call
        _originals["thread_start"] = threading.Thread.start
        _originals["execution_logic"] = execution_worker.ExecutionWorker._execution_logic
        _originals["eval_job"] = distributed.DistributedItemProcessorWorker._eval_job
        _originals["add_event"] = event_manager.EventManager.add_event
        _originals["state_body"] = state_module.CommonStateField._eval_body

        def make_api_call(client, operation_name, api_params):
            rules_now = _active
            if rules_now is not None:
                rules_now.authorise(client.meta.service_model.signing_name, operation_name, api_params)
            return _originals["api_call"](client, operation_name, api_params)

        def thread_start(thread):
            # The work a function hands to a thread is still that function's (boto3's transfer
            # threads, moto's interpreter threads): the caller and the history count go along.
            if _active is not None:
                context = contextvars.copy_context()
                run = thread.run
                thread.run = lambda: context.run(run)
            return _originals["thread_start"](thread)

        def execution_logic(worker):
            rules_now = _active
            if rules_now is None:
                return _originals["execution_logic"](worker)
            details = worker._evaluation_details.execution_details
            principal = rules_now.by_role_arn.get(details.role_arn)
            caller, history = _caller.set(principal), _history.set(_HistoryCount(f"execution {details.name}"))
            try:
                return _originals["execution_logic"](worker)
            finally:
                _history.reset(history)
                _caller.reset(caller)

        def eval_job(worker, env, job):
            # Each item of a Distributed Map runs as a child execution with a history of its own.
            token = _history.set(_HistoryCount(f"map item {job.job_index} (a child execution)"))
            try:
                return _originals["eval_job"](worker, env, job)
            finally:
                _history.reset(token)

        def add_event(manager, *args, **kwargs):
            if _active is not None:
                _active.count_history_event()
            return _originals["add_event"](manager, *args, **kwargs)

        def state_body(state, env):
            rules_now = _active
            exceeded = rules_now.history_exceeded() if rules_now is not None else None
            if exceeded:
                _fail_execution(env, exceeded)
            return _originals["state_body"](state, env)

        botocore.client.BaseClient._make_api_call = make_api_call
        threading.Thread.start = thread_start
        execution_worker.ExecutionWorker._execution_logic = execution_logic
        distributed.DistributedItemProcessorWorker._eval_job = eval_job
        event_manager.EventManager.add_event = add_event
        state_module.CommonStateField._eval_body = state_body


def _fail_execution(env, cause: str) -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error = StatesErrorNameType.StatesRuntime
    raise FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=error), event_type=HistoryEventType.ExecutionFailed,
        event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(error=error.to_name(), cause=cause))))


def uninstall(rules: AwsRules) -> None:
    global _active
    with _install_lock:
        if _active is rules:
            _active = None
        # The patches stay in place (they do nothing without active rules): another deployment in
        # the same process installs its rules into them.
