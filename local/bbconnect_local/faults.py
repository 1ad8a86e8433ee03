"""Fault injection for the local deployment: Lambdas that crash, and SQS messages that come twice.

    with FaultInjector(env.deployment) as faults:
        with faults.crash("RenderFunction", "after", match=faults.for_key(key)) as fault:
            ... drop the file, wait for the run ...
        assert fault.fired

What a crash is, as the Lambda service sees it:
- ``before``: the invocation fails before the handler runs (nothing done);
- ``after``: the handler runs to the end, then the invocation fails (a timeout or a dead container
  after the work was done: the result is lost, the side effects stay);
- ``mid``: the handler dies in the middle of its work, between two of its AWS writes: after its
  ``after_writes``-th write, or at the first write once ``once_true()`` holds (e.g. "Logius has
  the batch": dies after the POST, before recording it).

Inside the handler the crash is a ``LambdaCrash``, a ``BaseException``: no ``except Exception`` in
the handler (Powertools' batch processor and idempotency, the service code) can catch it, as none
can catch a killed container. The invoker (a Step Functions Task, an SQS event source, API
Gateway) gets a ``LambdaCrashed`` that names the error the Lambda service reports
(``Sandbox.Timedout``, ``Runtime.ExitError``, ``Lambda.Unknown``), so Retry and Catch match on it.

``redeliver_while_running`` makes an SQS-triggered invocation's messages visible again while it
is still working (its visibility timeout ran out), waits until another invocation has handled
the same message, and then lets the first go on.

``pause`` stops an invocation at such a point until a condition holds (another invocation has
done something), then lets it go on; ``hold`` stops one before its handler until the test
releases it (to stop an execution at a known place).

Everything is generic: the injector knows the handlers and the AWS API, never the service code.
It counts each invocation's AWS calls by patching botocore's one entry point for every client
(``BaseClient._make_api_call``) and attributing the call to the invocation running in that thread.
"""
from __future__ import annotations

import base64
import contextvars
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

# What the Lambda service reports for a crash, per kind of crash.
DEFAULT_ERRORS = {"before": "Runtime.ExitError", "mid": "Runtime.ExitError", "after": "Sandbox.Timedout"}
CRASH_ERRORS = ("Sandbox.Timedout", "Runtime.ExitError", "Lambda.Unknown")
STOP_MODES = ("redeliver", "pause")  # faults that stop an invocation for a while, then let it go on

# An API call with a side effect. Reads (Get, List, Describe, Head, Query, Scan, Receive) are not
# writes; neither is a heartbeat.
_WRITE_PREFIXES = ("Put", "Update", "Delete", "BatchWrite", "TransactWrite", "Copy", "CreateMultipartUpload",
                   "UploadPart", "CompleteMultipartUpload", "Send", "Start", "Stop", "ChangeMessageVisibility",
                   "Publish", "Redrive")
_NOT_WRITES = frozenset({"SendTaskHeartbeat"})


def is_write(operation: str) -> bool:
    return operation not in _NOT_WRITES and operation.startswith(_WRITE_PREFIXES)


class LambdaCrash(BaseException):
    """Raised inside a handler: the container dies here. A BaseException, so nothing catches it."""


class LambdaCrashed(Exception):
    """What the invoker sees of a crashed invocation."""

    def __init__(self, function: str, mode: str, error_type: str, detail: str = ""):
        super().__init__(f"injected crash of {function} ({mode}){': ' + detail if detail else ''}")
        self.function, self.mode, self.error_type = function, mode, error_type


@dataclass
class Call:
    service: str
    operation: str
    write: bool


@dataclass
class Invocation:
    function: str
    event: Any
    calls: list[Call] = field(default_factory=list)
    fault: Fault | None = None
    crashed: str | None = None  # the mode, when it crashed
    finished: bool = False  # the handler returned (and no crash after it)
    ended: bool = False  # the invocation is over, whatever its outcome

    @property
    def writes(self) -> list[str]:
        return [f"{c.service}.{c.operation}" for c in self.calls if c.write]

    def message_ids(self) -> list[str]:
        """The SQS messages of an invocation from an SQS event source (none otherwise)."""
        records = self.event.get("Records", []) if isinstance(self.event, dict) else []
        return [record["messageId"] for record in records if isinstance(record, dict) and "messageId" in record]


@dataclass
class Fault:
    """One armed fault: which function (logical id), which invocations (`match` on the event),
    where it strikes, and the invocations it struck (`fired`)."""

    function: str
    mode: str  # before | after | mid | redeliver | pause | hold
    match: Callable[[Any], bool] | None = None
    after_writes: int | None = None
    once_true: Callable[[], bool] | None = None
    until: Callable[[], bool] | None = None  # pause: go on once this holds
    times: int = 1
    error: str = "Runtime.ExitError"
    timeout: float = 60.0
    fired: list[Invocation] = field(default_factory=list)
    # hold and pause: set once an invocation is stopped; `release()` lets it go on
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    _taken: int = 0

    def release(self) -> None:
        self.released.set()

    @property
    def writes_before_crash(self) -> list[list[str]]:
        return [invocation.writes for invocation in self.fired]


class FaultInjector:
    """Installs itself on a `LocalDeployment` (all its functions) and on botocore; `uninstall()`
    (or leaving the `with`) puts everything back."""

    def __init__(self, deployment):
        self.deployment = deployment
        self.invocations: list[Invocation] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._done = threading.Condition(self._lock)
        self._handled: dict[str, int] = {}  # SQS messageId -> invocations that finished handling it
        self._local = threading.local()
        self._saved_call = None
        self._batch_of_key: dict[str, str] = {}

    # ------------------------------------------------------------------ installing
    def install(self) -> FaultInjector:
        from botocore.client import BaseClient

        if self._saved_call is not None:
            return self
        original = self._saved_call = BaseClient._make_api_call
        injector = self

        def _make_api_call(client, operation_name, api_params):
            return injector._api_call(original, client, operation_name, api_params)

        BaseClient._make_api_call = _make_api_call
        for function in self.deployment.functions.values():
            function.interceptor = self._intercept
        return self

    def uninstall(self) -> None:
        from botocore.client import BaseClient

        for function in self.deployment.functions.values():
            if function.interceptor == self._intercept:
                function.interceptor = None
        if self._saved_call is not None:
            BaseClient._make_api_call = self._saved_call
            self._saved_call = None
        with self._lock:
            for fault in self._faults:
                fault.released.set()
            self._faults.clear()

    def __enter__(self) -> FaultInjector:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    # ------------------------------------------------------------------ arming
    def crash(self, function: str, when: str, *, match: Callable[[Any], bool] | None = None,
              after_writes: int | None = None, once_true: Callable[[], bool] | None = None, times: int = 1,
              error: str | None = None) -> _Armed:
        """Make `function` (a logical id of the template) crash `times` times, `when` before, after
        or in the middle of its work (see the module docstring)."""
        if when not in ("before", "after", "mid"):
            raise ValueError(f"when must be before, after or mid, not {when!r}")
        if when == "mid" and after_writes is None and once_true is None:
            raise ValueError("a crash in the middle needs after_writes or once_true")
        return self._arm(Fault(function, when, match=match, after_writes=after_writes, once_true=once_true, times=times,
                               error=error or DEFAULT_ERRORS[when]))

    def redeliver_while_running(self, function: str, *, match: Callable[[Any], bool] | None = None,
                                at_write: int | None = None, once_true: Callable[[], bool] | None = None,
                                timeout: float = 60.0) -> _Armed:
        """The next matching SQS-triggered invocation of `function` has its messages made visible
        again while it works: before its handler, before its `at_write`-th write, or at the first
        write once `once_true()` holds. It then waits (at most `timeout` s) until another invocation
        has handled the same messages, and goes on."""
        return self._arm(Fault(function, "redeliver", match=match, after_writes=at_write, once_true=once_true,
                               timeout=timeout))

    def pause(self, function: str, *, until: Callable[[], bool] | None = None, match: Callable[[Any], bool] | None = None,
              at_write: int | None = None, once_true: Callable[[], bool] | None = None, timeout: float = 60.0) -> _Armed:
        """The next matching invocation of `function` stops (before its handler, before its
        `at_write`-th write, or at the first write once `once_true()` holds) until `until()` holds
        (or `release()`, or `timeout` s), then goes on. `reached` is set when it stops."""
        return self._arm(Fault(function, "pause", match=match, after_writes=at_write, once_true=once_true, until=until,
                               timeout=timeout))

    def hold(self, function: str, *, match: Callable[[Any], bool] | None = None, timeout: float = 60.0) -> _Armed:
        """Hold the next matching invocation of `function` before its handler until `release()`
        (or `timeout` s). `reached` is set once one is held."""
        return self._arm(Fault(function, "hold", match=match, timeout=timeout))

    def _arm(self, fault: Fault) -> _Armed:
        if fault.function not in self.deployment.functions:
            raise KeyError(f"{fault.function} is not a function of the template: {sorted(self.deployment.functions)}")
        with self._lock:
            self._faults.append(fault)
        return _Armed(self, fault)

    def disarm(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
        fault.released.set()

    # ------------------------------------------------------------------ matching helpers
    def for_key(self, key: str) -> Callable[[Any], bool]:
        """Matches the invocations that work for the batch file `key`: the starter's S3 event, the
        execution's tasks (by the batch id Ingest was given for the key), its send-queue messages."""

        spellings = {key, quote(key, safe=""), quote_plus(key, safe="")}  # S3 events carry the key URL-encoded

        def match(event: Any) -> bool:
            text = json.dumps(event, default=str) if not isinstance(event, str) else event
            if any(spelling in text for spelling in spellings):
                return True
            batch_id = self._batch_of_key.get(key)
            return bool(batch_id) and batch_id in text

        return match

    def batch_id_of(self, key: str) -> str | None:
        return self._batch_of_key.get(key)

    @staticmethod
    def inbound_action(action: str) -> Callable[[Any], bool]:
        """Matches API Gateway events (the inbound ebMS endpoint) whose message carries `action`."""

        def match(event: Any) -> bool:
            if not isinstance(event, dict) or "httpMethod" not in event:
                return False
            body = event.get("body") or ""
            raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
            return action.encode() in raw

        return match

    # ------------------------------------------------------------------ what happened
    def invocations_of(self, function: str, match: Callable[[Any], bool] | None = None) -> list[Invocation]:
        with self._lock:
            found = [i for i in self.invocations if i.function == function]
        return [i for i in found if match is None or match(i.event)]

    def most_writes(self, function: str, match: Callable[[Any], bool] | None = None) -> int:
        """The most AWS writes one finished, uncrashed invocation of `function` made."""
        return max((len(i.writes) for i in self.invocations_of(function, match) if i.finished and not i.crashed), default=0)

    # ------------------------------------------------------------------ the interception
    def _current(self) -> Invocation | None:
        stack = getattr(self._local, "stack", None)
        if not stack or getattr(self._local, "internal", False):
            return None
        return stack[-1]

    def _take(self, function: str, event: Any) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.function != function or fault._taken >= fault.times:
                    continue
                if fault.match is not None and not fault.match(event):
                    continue
                fault._taken += 1
                return fault
        return None

    def _give_back(self, fault: Fault) -> None:
        with self._lock:
            fault._taken -= 1

    def _intercept(self, function, handler, event, context):
        name = function.logical_id
        if isinstance(event, dict) and isinstance(event.get("key"), str) and event.get("batch_id"):
            with self._lock:  # an execution's input (Ingest): its tasks carry the batch id, not the key
                self._batch_of_key.setdefault(event["key"], event["batch_id"])
        fault = self._take(name, event)
        invocation = Invocation(name, event, fault=fault)
        with self._lock:
            self.invocations.append(invocation)
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(invocation)
        fired = False
        try:
            if fault is not None and fault.mode == "before":
                fired = True
                self._crash(invocation, "before")
            if fault is not None and fault.mode == "hold":
                fired = True
                self._fire(invocation)
                fault.reached.set()
                fault.released.wait(fault.timeout)
            if fault is not None and fault.mode in STOP_MODES and fault.after_writes is None and fault.once_true is None:
                fired = True
                self._stop_point(invocation)
            result = handler(event, context)
            if fault is not None and fault.mode == "after":
                fired = True
                self._crash(invocation, "after")
            invocation.finished = True
            return result
        except LambdaCrash as crash:
            fired = True
            raise LambdaCrashed(name, invocation.crashed or "mid", fault.error if fault else "Runtime.ExitError", str(crash)) from None
        finally:
            stack.pop()
            invocation.ended = True
            fired = fired or (fault is not None and invocation in fault.fired)
            if fault is not None and not fired:
                self._give_back(fault)  # it did not strike this invocation: the next one may meet it
            with self._done:
                if not invocation.crashed:
                    for message_id in invocation.message_ids():
                        self._handled[message_id] = self._handled.get(message_id, 0) + 1
                self._done.notify_all()

    def _fire(self, invocation: Invocation) -> None:
        with self._lock:
            invocation.fault.fired.append(invocation)

    def _crash(self, invocation: Invocation, mode: str) -> None:
        invocation.crashed = mode
        self._fire(invocation)
        raise LambdaCrash(f"{invocation.function} {mode} ({len(invocation.writes)} writes done)")

    def _api_call(self, original, client, operation_name, api_params):
        invocation = self._current()
        if invocation is None:
            return original(client, operation_name, api_params)
        write = is_write(operation_name)
        fault = invocation.fault
        armed = fault is not None and fault.mode in ("mid", *STOP_MODES) and invocation not in fault.fired
        if armed and write:
            if fault.once_true is not None and self._internal(fault.once_true):
                if fault.mode == "mid":
                    self._crash(invocation, "mid")
                self._stop_point(invocation)
            elif fault.mode in STOP_MODES and fault.after_writes is not None and len(invocation.writes) + 1 >= fault.after_writes:
                self._stop_point(invocation)
        invocation.calls.append(Call(client.meta.service_model.service_name, operation_name, write))
        result = original(client, operation_name, api_params)
        if armed and write and fault.mode == "mid" and fault.after_writes is not None \
                and len(invocation.writes) >= fault.after_writes:
            self._crash(invocation, "mid")
        return result

    def _internal(self, action: Callable[[], Any]) -> Any:
        """Run the injector's own work (its AWS calls are nobody's writes, and made as the harness:
        not in the interrupted function's container, not with its role)."""
        self._local.internal = True
        try:
            return contextvars.Context().run(action)
        finally:
            self._local.internal = False

    def _stop_point(self, invocation: Invocation) -> None:
        fault = invocation.fault
        if fault.mode == "redeliver":
            self._redeliver(invocation)
            return
        self._fire(invocation)
        fault.reached.set()
        deadline = time.monotonic() + fault.timeout
        with self._done:  # paused at most `timeout` s, then it goes on whatever happened
            while not fault.released.is_set() and not (fault.until is not None and self._internal(fault.until)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._done.wait(min(left, 0.2))

    def _redeliver(self, invocation: Invocation) -> None:
        """Make the invocation's SQS messages visible again, and wait until another invocation
        has handled them."""
        fault = invocation.fault
        self._fire(invocation)
        records = [r for r in (invocation.event or {}).get("Records", []) if "receiptHandle" in r]
        if not records:
            raise ValueError(f"{invocation.function} was not invoked from SQS: nothing to redeliver")
        function = self.deployment.functions[invocation.function]
        urls = {source["queue_arn"]: source["queue_url"] for source in function.sqs_sources}
        with self._lock:
            before = {r["messageId"]: self._handled.get(r["messageId"], 0) for r in records}

        def make_visible():
            import boto3

            sqs = boto3.client("sqs")
            for record in records:
                sqs.change_message_visibility(QueueUrl=urls[record["eventSourceARN"]], ReceiptHandle=record["receiptHandle"],
                                              VisibilityTimeout=0)

        self._internal(make_visible)
        deadline = time.monotonic() + fault.timeout
        with self._done:
            while not all(self._handled.get(m, 0) > n for m, n in before.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the redelivered messages of {invocation.function} were not handled in {fault.timeout} s")
                self._done.wait(min(left, 0.5))


class _Armed:
    """An armed fault: a context manager that disarms it on leaving, and the fault's record."""

    def __init__(self, injector: FaultInjector, fault: Fault):
        self.injector, self.fault = injector, fault

    def __enter__(self) -> Fault:
        return self.fault

    def __exit__(self, *exc) -> None:
        self.injector.disarm(self.fault)

    def __getattr__(self, name):
        return getattr(self.fault, name)
