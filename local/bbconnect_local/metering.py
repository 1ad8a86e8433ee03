"""What a local run would cost on AWS, counted while it runs (for `bench/load_pipeline.py` and
`bench/cost_model.py`).

Everything runs in one process locally, so the meter tells apart, per thread, the CPU time spent in
bbconnect's Lambda handlers (what AWS would bill as our functions' work) from the CPU time moto
spends emulating AWS (S3, DynamoDB, SQS, Step Functions: on AWS that is Amazon's work, paid through
the request prices), and counts what those services would bill:

- Step Functions state transitions (every state entered, in the batch execution and in the
  distributed map's child executions, plus every retry), per state;
- Lambda invocations, their wall time and memory (GB-seconds), and CPU time, per function;
- AWS API requests per service and operation, with S3 bytes written and, for DynamoDB, every
  write and read with the item it touched (the write units follow from the items' sizes).

A frame stack per thread keeps nested work apart: a Lambda invoked by moto's Step Functions
counts as the handler's, a DynamoDB call inside a handler as moto's.
"""
from __future__ import annotations

import gc
import json
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

HANDLER, EMULATION = "handler", "emulation"


@dataclass
class _Frame:
    kind: str
    name: str
    cpu_started: float
    wall_started: float
    children: float = 0.0
    aws_seconds: float = 0.0
    logius_seconds: float = 0.0


@dataclass
class FunctionUse:
    invocations: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the handler's own CPU time (AWS calls' emulation excluded)
    aws_call_seconds: float = 0.0  # moto's CPU inside the handler's AWS calls: stands for their latency on AWS
    logius_seconds: float = 0.0  # wall time of the handler's HTTPS calls to Logius (the simulator)
    memory_mb: int = 0

    @property
    def busy_seconds(self) -> float:
        """What the invocations would be billed for on AWS, each on a CPU of its own: their own CPU
        time, the time their AWS calls take, and the wait for Logius. (Their wall time here is longer:
        every function and moto share one Python interpreter.)"""
        return self.cpu_seconds + self.aws_call_seconds + self.logius_seconds

    @property
    def gb_seconds(self) -> float:
        return self.busy_seconds * self.memory_mb / 1024


@dataclass
class Meter:
    transitions: Counter = field(default_factory=Counter)
    retries: int = 0
    functions: dict[str, FunctionUse] = field(default_factory=lambda: defaultdict(FunctionUse))
    requests: Counter = field(default_factory=Counter)  # "service.Operation" -> count, made by our handlers
    platform_requests: Counter = field(default_factory=Counter)  # made by Step Functions, the SQS pollers, the harness
    emulation_cpu_seconds: float = 0.0
    render_cpu_seconds: float = 0.0  # of the handlers' CPU: LetterRenderer.render_with_pages
    renders: int = 0
    # Cyclic garbage collection, by who paid for it (HANDLER, EMULATION, the bench's "floor" thread,
    # "other") and generation: a collection walks every object of the one process, moto's stored items too.
    gc_seconds: Counter = field(default_factory=Counter)
    s3_bytes_written: int = 0
    dynamodb_writes: list[tuple[str, str, int | None]] = field(default_factory=list)  # (table, key, item bytes if known)
    dynamodb_reads: list[tuple[str, str, bool]] = field(default_factory=list)  # (table, key, consistent)
    dynamodb_query_items: list[tuple[str, int, bool]] = field(default_factory=list)  # (table, items, consistent)

    def __post_init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.RLock()
        self._undo: list = []

    # ------------------------------------------------------------------ frames
    def _stack(self) -> list[_Frame]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _enter(self, kind: str, name: str) -> _Frame:
        frame = _Frame(kind, name, time.thread_time(), time.perf_counter())
        self._stack().append(frame)
        return frame

    def _leave(self, frame: _Frame) -> tuple[float, float]:
        stack = self._stack()
        stack.pop()
        elapsed = time.thread_time() - frame.cpu_started
        if stack:
            stack[-1].children += elapsed
        return elapsed - frame.children, time.perf_counter() - frame.wall_started

    # ------------------------------------------------------------------ patches
    def install(self, deployment=None) -> Meter:
        from moto.core.botocore_stubber import BotocoreStubber
        from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
        from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

        from bbconnect.adapters import transport
        from bbconnect.rendering.letter import LetterRenderer
        from bbconnect_local.deployment import LocalFunction

        meter = self
        post = transport.post
        render = LetterRenderer.render_with_pages

        def timed_render(renderer_self, doc):
            if not any(frame.kind == HANDLER for frame in meter._stack()):
                return render(renderer_self, doc)  # not a function's (a benchmark's own floor)
            started = time.thread_time()
            try:
                return render(renderer_self, doc)
            finally:
                with meter._lock:
                    meter.render_cpu_seconds += time.thread_time() - started
                    meter.renders += 1

        def timed_post(*args, **kwargs):
            started = time.perf_counter()
            try:
                return post(*args, **kwargs)
            finally:
                handler = next((frame for frame in reversed(meter._stack()) if frame.kind == HANDLER), None)
                if handler is not None:
                    handler.logius_seconds += time.perf_counter() - started
        enter_state, retry, stub, invoke = (CommonStateField._eval_body, ExecutionState._handle_retry,
                                            BotocoreStubber.__call__, LocalFunction.__call__)

        def counted_state(state_self, env):
            with meter._lock:
                meter.transitions[state_self.name] += 1
            return enter_state(state_self, env)

        def counted_retry(state_self, env, failure_event):
            outcome = retry(state_self, env, failure_event)
            with meter._lock:
                meter.retries += 1
            return outcome

        def metered_request(stub_self, event_name, request, **kwargs):
            ours = any(frame.kind == HANDLER for frame in meter._stack())
            frame = meter._enter(EMULATION, event_name)
            try:
                response = stub(stub_self, event_name, request, **kwargs)
            finally:
                own, _wall = meter._leave(frame)
                with meter._lock:
                    meter.emulation_cpu_seconds += own
                handler = next((f for f in reversed(meter._stack()) if f.kind == HANDLER), None)
                if handler is not None:
                    handler.aws_seconds += own
            meter._count(event_name, request, response, ours=ours)
            return response

        def metered_invoke(function_self, event):
            frame = meter._enter(HANDLER, function_self.logical_id)
            try:
                return invoke(function_self, event)
            finally:
                own, wall = meter._leave(frame)
                with meter._lock:
                    use = meter.functions[function_self.logical_id]
                    use.invocations += 1
                    use.wall_seconds += wall
                    use.cpu_seconds += own
                    use.aws_call_seconds += frame.aws_seconds
                    use.logius_seconds += frame.logius_seconds
                    use.memory_mb = function_self.memory

        def collected(phase: str, info: dict) -> None:
            if phase == "start":
                meter._local.gc_started = time.thread_time()
                return
            started = getattr(meter._local, "gc_started", None)
            if started is None:
                return
            stack = meter._stack()
            payer = stack[-1].kind if stack else "floor" if threading.current_thread().name == "floor" else "other"
            with meter._lock:  # reentrant: a collection may start while this thread holds it
                meter.gc_seconds[(payer, info.get("generation", 0))] += time.thread_time() - started

        gc.callbacks.append(collected)
        self._gc_callback = collected
        CommonStateField._eval_body = counted_state
        ExecutionState._handle_retry = counted_retry
        BotocoreStubber.__call__ = metered_request
        LocalFunction.__call__ = metered_invoke
        transport.post = timed_post
        LetterRenderer.render_with_pages = timed_render
        self._undo = [(transport, "post", post), (LetterRenderer, "render_with_pages", render),
                      (CommonStateField, "_eval_body", enter_state), (ExecutionState, "_handle_retry", retry),
                      (BotocoreStubber, "__call__", stub), (LocalFunction, "__call__", invoke)]
        return self

    def uninstall(self) -> None:
        for owner, name, original in self._undo:
            setattr(owner, name, original)
        self._undo = []
        callback = getattr(self, "_gc_callback", None)
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    # ------------------------------------------------------------------ counting requests
    def _count(self, event_name: str, request, response, *, ours: bool) -> None:
        parts = event_name.split(".")
        if len(parts) < 3:
            return
        service, operation = parts[1], parts[2]
        with self._lock:
            (self.requests if ours else self.platform_requests)[f"{service}.{operation}"] += 1
        if not ours:
            return
        if service == "s3" and operation in ("PutObject", "UploadPart"):
            size = _body_size(request)
            with self._lock:
                self.s3_bytes_written += size
        if service == "dynamodb":
            self._count_dynamodb(operation, request, response)

    def _count_dynamodb(self, operation: str, request, response) -> None:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return
        writes, reads, queried = [], [], []
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            item = body.get("Item")
            writes.append((body["TableName"], _key_of(body.get("Key") or item), _size(item) if item else None))
        elif operation == "BatchWriteItem":
            for table, requests in body.get("RequestItems", {}).items():
                for entry in requests:
                    if "PutRequest" in entry:
                        item = entry["PutRequest"]["Item"]
                        writes.append((table, _key_of(item), _size(item)))
                    else:
                        writes.append((table, _key_of(entry["DeleteRequest"]["Key"]), None))
        elif operation == "GetItem":
            reads.append((body["TableName"], _key_of(body["Key"]), bool(body.get("ConsistentRead"))))
        elif operation == "BatchGetItem":
            for table, wanted in body.get("RequestItems", {}).items():
                reads.extend((table, _key_of(key), bool(wanted.get("ConsistentRead"))) for key in wanted.get("Keys", []))
        elif operation in ("Query", "Scan") and response is not None:
            try:
                answer = json.loads(response.content)  # cached on the response: botocore reads it again
            except Exception:
                answer = {}
            queried.append((body["TableName"], int(answer.get("ScannedCount") or answer.get("Count") or 0),
                            bool(body.get("ConsistentRead"))))
        with self._lock:
            self.dynamodb_writes.extend(writes)
            self.dynamodb_reads.extend(reads)
            self.dynamodb_query_items.extend(queried)

    # ------------------------------------------------------------------ results
    @property
    def handler_cpu_seconds(self) -> float:
        return sum(use.cpu_seconds for use in self.functions.values())

    def summary(self, item_sizes: dict[tuple[str, str], int] | None = None, gsi_keys: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
        """The counts, with DynamoDB write and read units worked out from the items' sizes
        (`item_sizes`: (table, key) -> bytes at the end of the run, for writes whose size the
        request does not show; `gsi_keys`: the items an index also stores, one more write each)."""
        sizes = item_sizes or {}
        write_units, gsi_units = 0, 0
        for table, key, size in self.dynamodb_writes:
            size = size if size is not None else sizes.get((table, key), 1024)
            write_units += max(1, math.ceil(size / 1024))
            if (table, key) in gsi_keys:
                gsi_units += 1
        read_units = 0.0
        for table, key, consistent in self.dynamodb_reads:
            units = max(1, math.ceil(sizes.get((table, key), 1024) / 4096))
            read_units += units if consistent else units / 2
        for _table, items, consistent in self.dynamodb_query_items:
            read_units += max(1, items) * (1 if consistent else 0.5)
        return {
            "state_transitions": sum(self.transitions.values()) + self.retries,
            "transitions_by_state": dict(self.transitions), "retries": self.retries,
            "functions": {name: {"invocations": use.invocations, "wall_seconds": round(use.wall_seconds, 3),
                                 "cpu_seconds": round(use.cpu_seconds, 3), "aws_call_seconds": round(use.aws_call_seconds, 3),
                                 "logius_seconds": round(use.logius_seconds, 3), "busy_seconds": round(use.busy_seconds, 3),
                                 "memory_mb": use.memory_mb,
                                 "gb_seconds": round(use.gb_seconds, 3)} for name, use in sorted(self.functions.items())},
            "requests": dict(sorted(self.requests.items())),
            "platform_requests": dict(sorted(self.platform_requests.items())),
            "s3_bytes_written": self.s3_bytes_written,
            "dynamodb_write_requests": len(self.dynamodb_writes), "dynamodb_write_units": write_units + gsi_units,
            "dynamodb_gsi_write_units": gsi_units,
            "dynamodb_read_units": round(read_units, 1),
            "handler_cpu_seconds": round(self.handler_cpu_seconds, 3),
            "emulation_cpu_seconds": round(self.emulation_cpu_seconds, 3),
            "render_cpu_seconds": round(self.render_cpu_seconds, 3), "renders": self.renders,
            "gc_seconds": {f"{who} gen{gen}": round(seconds, 3) for (who, gen), seconds in sorted(self.gc_seconds.items())},
        }


def _body_size(request) -> int:
    body = request.body
    if isinstance(body, (bytes, bytearray, str)):
        return len(body)
    length = request.headers.get("Content-Length") or request.headers.get("X-Amz-Decoded-Content-Length")
    if length:
        return int(length)
    if hasattr(body, "seek") and hasattr(body, "tell"):
        here = body.tell()
        body.seek(0, 2)
        size = body.tell()
        body.seek(here)
        return size
    return 0


def _key_of(item: dict | None) -> str:
    if not item:
        return ""
    for name in ("letter_key", "pk"):
        if name in item:
            return next(iter(item[name].values()))
    return json.dumps(item, sort_keys=True)


def _size(item: dict) -> int:
    """An item's size as DynamoDB counts it, near enough: names plus values (UTF-8)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode()) + _value_size(value)
    return total


def _value_size(value: dict) -> int:
    (kind, inner), = value.items()
    if kind in ("S", "B"):
        return len(str(inner).encode())
    if kind == "N":
        return math.ceil(len(str(inner)) / 2) + 1
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(len(key.encode()) + 1 + _value_size(element) for key, element in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(element).encode()) for element in inner)
    return len(json.dumps(inner))


def table_item_sizes(table_names: list[str]) -> tuple[dict[tuple[str, str], int], set[tuple[str, str]]]:
    """(table, key) -> size of every item at the end of a run, and the keys an index stores
    (letters carrying `index_batch`). Scanned through the low-level client, so sizes come from
    the typed values as DynamoDB stores them."""
    import boto3

    client = boto3.client("dynamodb")
    sizes, indexed = {}, set()
    for table in table_names:
        kwargs: dict = {"TableName": table}
        while True:
            page = client.scan(**kwargs)
            for item in page["Items"]:
                key = _key_of(item)
                sizes[(table, key)] = _size(item)
                if "index_batch" in item:
                    indexed.add((table, key))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sizes, indexed
