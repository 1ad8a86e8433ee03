"""No full BSN, no letter text and no PDF in any log line of a whole run.

The sample tax run (JSON Lines and CSV) and a faulty run (Logius faults, bad rows, bad files) go
through the local pipeline while everything that could end up in CloudWatch is captured:
- every log record of every logger, at DEBUG (root at DEBUG, the Powertools service loggers lowered
  to DEBUG too), with its `extra` keys and traceback;
- what the Powertools handlers themselves write (their JSON lines; the handlers keep the stream they
  were made with, so their streams are swapped for the duration);
- stdout and stderr at the file-descriptor level (capfd): the EMF metric blobs, prints, warnings and
  whatever the simulator and moto write.
The capture is shown to work: the batch ids, a Powertools JSON line and an EMF blob must be in it.
"""
from __future__ import annotations

import io
import itertools
import json
import logging
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import boto3

from bbconnect_local.environment import REPO_ROOT

SAMPLES = REPO_ROOT / "events" / "batches" / "gemeente-lv"
JSONL, CSV = SAMPLES / "aanslagen-2027.jsonl", SAMPLES / "aanslagen-2027-small.csv"
# A sentence every sample letter's text has, and the start of every PDF (raw and base64).
LETTER_SENTENCE = "In de bijlage vindt u het aanslagbiljet met de toelichting op de heffingen."
PDF_MARKERS = ("%PDF-", "JVBERi0")
_RECORD_FIELDS = set(vars(logging.LogRecord("x", logging.INFO, __file__, 1, "x", None, None))) | {"message", "asctime"}


def bsn_forms(bsn: str) -> set[str]:
    """The ways a BSN can be written: as is, as a number, grouped with dots, spaces or dashes."""
    forms = {bsn, str(int(bsn))}
    for groups in ((4, 2, 3), (3, 3, 3)):
        parts, start = [], 0
        for size in groups:
            parts.append(bsn[start:start + size])
            start += size
        forms.update(separator.join(parts) for separator in (".", " ", "-"))
    return forms


def _masked(line: str, needle: str) -> str:
    at = line.find(needle)
    return (line[max(0, at - 80):at] + "<" + "*" * len(needle) + ">" + line[at + len(needle):at + len(needle) + 80]).strip()


# Every place a BSN-shaped number could stand (overlapping, not inside a longer number): nine digits,
# eight (a BSN with a leading zero as a number), or grouped 4-2-3 or 3-3-3 with dots, spaces or dashes.
_CANDIDATE = re.compile(r"(?=(?<!\d)(\d{9}|\d{8}|\d{4}([. -])\d{2}\2\d{3}|\d{3}([. -])\d{3}\3\d{3})(?!\d))")


def leaks(sources: dict[str, list[str]], bsns: set[str]) -> list[str]:
    """Every captured line holding a BSN (in any form), the letter text or PDF bytes (shown masked)."""
    forms = {form for bsn in bsns for form in bsn_forms(bsn)}
    found = []
    for source, lines in sources.items():
        for line in lines:
            hits = [("BSN", m.group(1)) for m in _CANDIDATE.finditer(line) if m.group(1) in forms]
            hits += [("letter text", LETTER_SENTENCE)] if LETTER_SENTENCE in line else []
            hits += [("PDF bytes", marker) for marker in PDF_MARKERS if marker in line]
            found += [f"{source}: {what}: {_masked(line, needle)[:300]}" for what, needle in hits]
    return found


# ---------------------------------------------------------------------- the capture
class _EveryRecord(logging.Handler):
    """Keeps every record as text: the formatted message (traceback included) and its extra keys."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        return True  # Powertools adds a SuppressFilter to the root handlers it finds: see past it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as error:
            text = f"{record.name} unformattable {record.msg!r} % {record.args!r} ({error!r})"
        extra = {key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS}
        self.lines.append(f"{text} {extra!r}" if extra else text)


class _LockedBuffer(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)


@contextmanager
def capture_all_logging():
    """Root at DEBUG with a handler that sees every record; the Powertools loggers at DEBUG with their
    handlers writing into buffers. Yields (record handler, {logger name: buffer})."""
    root = logging.getLogger()
    handler = _EveryRecord()
    saved_root_level = root.level
    swapped, levels = [], []
    powertools: dict[str, _LockedBuffer] = {}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and getattr(logger, "powertools_handler", None) is not None:
            buffer = powertools[name] = _LockedBuffer()
            stream_handler = logger.powertools_handler
            swapped.append((stream_handler, stream_handler.setStream(buffer)))
            levels.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
    # The handlers already on root (pytest's, which show a failure's log) are held at INFO, so a
    # failure stays readable; this capture's own handler takes everything.
    quieted = [(other, other.level) for other in root.handlers]
    for other, level in quieted:
        other.setLevel(max(level, logging.INFO))
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler, powertools
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root_level)
        for other, level in quieted:
            other.setLevel(level)
        for logger, level in levels:
            logger.setLevel(level)
        for stream_handler, old in swapped:
            if old is not None:
                stream_handler.setStream(old)


# ---------------------------------------------------------------------- the runs
def _tenant_like_gemeente_lv(env, name: str) -> str:
    """A tenant of its own for this test (its references are new), configured as the local gemeente-lv."""
    config = json.loads((env.config_dir / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["tenant"] = name
    return env.put_tenant_config(config)


def _faulty_file(path: Path, bsn, tenant_rows: list[dict]) -> None:
    lines = [json.dumps(row) for row in tenant_rows]
    broken = bsn(7015)
    lines.insert(3, '{"reference": "logs-broken", "sender": "lv", "bsn": "' + broken + '", "subject": "Aanslag')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_ASSESSMENT_NUMBERS = itertools.count(900001)


def _row(reference: str, bsn_value, **changes) -> dict:
    """The sample's first letter with another reference, citizen and assessment number."""
    row = json.loads(JSONL.read_text(encoding="utf-8").splitlines()[0])
    row.update({"reference": reference, "bsn": bsn_value})
    row["data"]["assessment_number"] = f"2027{next(_ASSESSMENT_NUMBERS)}"
    row["data"].pop("betalingskenmerk", None)
    row.update(changes)
    return row


def test_given_a_whole_run_with_faults_when_every_log_line_is_captured_then_none_holds_a_bsn_the_letter_text_or_a_pdf(
        local_env, bsn, tmp_path, capfd):
    env = local_env
    # Given the handlers loaded (their Powertools loggers exist) and three tenants of this test's own
    for function in env.deployment.functions.values():
        if function.module is None:
            function.load()
    tenants = [_tenant_like_gemeente_lv(env, name) for name in ("logs-lv-jsonl", "logs-lv-csv", "logs-lv-faults")]
    # And the inputs: the sample tax run (JSON Lines and CSV) and a faulty file
    sample_rows = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]
    bsns = {row["bsn"] for row in sample_rows if isinstance(row.get("bsn"), str)}
    bsns |= set(re.findall(r"(?<![\d.])\d{9}(?![\d.])", CSV.read_text(encoding="utf-8")))
    good = [bsn(7000 + n) for n in range(6)]
    env.simulator_config.subscribed.update(good[:4])
    env.simulator_config.result_codes[good[3]] = "TechnischProbleem"
    invalid = bsn(7010)[:-1] + str((int(bsn(7010)[-1]) + 1) % 10)  # fails the 11-test
    as_number, dotted, as_sender, as_field = bsn(7011), bsn(7012), bsn(7013), bsn(7014)
    faulty_rows = [_row(f"logs-good-{n}", number) for n, number in enumerate(good)] + [
        _row("logs-invalid", invalid),
        _row("logs-number", int(as_number)),
        _row("logs-dotted", f"{dotted[:4]}.{dotted[4:6]}.{dotted[6:]}"),
        _row("logs-sender", bsn(7016), sender=as_sender),
        {**_row("logs-field", bsn(7017)), as_field: "x"},
    ]
    faulty = tmp_path / "faulty.jsonl"
    _faulty_file(faulty, bsn, faulty_rows)
    no_header = tmp_path / "no-header.csv"
    no_header.write_text(CSV.read_text(encoding="utf-8").splitlines()[1] + "\n", encoding="utf-8")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(f"reference,bsn\nr\xe9f-1,{bsn(7018)}\n".encode("latin-1"))
    bsns |= set(good) | {invalid, as_number, dotted, as_sender, as_field} | {bsn(n) for n in range(7015, 7019)}
    assert len(bsns) > 200
    capfd.readouterr()  # what came before this test is not this test's to judge

    faults = {"http_5xx": 0.3, "ebms_error": 0.3, "wus_application_fault": 0.5, "random_code": 0.5,
              "nil_guid": 0.5, "duplicate_result": 0.5, "gzip_result": 0.5}
    runs = {}
    try:
        with capture_all_logging() as (records, powertools):
            # When the sample run, the CSV sample and the faulty run go through, with bad files besides
            runs["jsonl"] = env.wait_for_execution(env.drop(JSONL, tenants[0]), timeout=420)
            runs["csv"] = env.wait_for_execution(env.drop(CSV, tenants[1]), timeout=240)
            faults_before = sum(env.simulator.fault_counts.values())
            env.simulator_config.faults = faults
            try:
                runs["faulty"] = env.wait_for_execution(env.drop(faulty, tenants[2]), timeout=420)
            finally:
                env.simulator_config.faults = {}
            runs["no-header"] = env.wait_for_execution(env.drop(no_header, tenants[2]), timeout=120)
            runs["latin1"] = env.wait_for_execution(env.drop(latin1, tenants[2]), timeout=120)
            runs["unknown-tenant"] = env.wait_for_execution(env.drop(faulty, "logs-nobody", name="x.jsonl"), timeout=120)
            boto3.client("s3").put_object(Bucket=env.outputs["InboxBucketName"], Key="loose-logs.jsonl", Body=faulty.read_bytes())
            runs["no-prefix"] = env.wait_for_execution("loose-logs.jsonl", timeout=120)
            env.simulator.wait_idle(timeout=30)
            logging.getLogger("bbconnect.security-test").debug("capture check: root at DEBUG")
        captured = capfd.readouterr()
    finally:
        env.simulator_config.result_codes.pop(good[3], None)
        for name in tenants:
            env.remove_tenant_config(name)

    # Then the runs did what they are for: the sample delivered, the faulty run rejected its bad rows
    assert all(run.status == "SUCCEEDED" for run in runs.values()), {k: r.status for k, r in runs.items()}
    reports = {name: json.loads(env.outbox_object(run.output["report"])) for name, run in runs.items()}
    assert reports["jsonl"]["counts"]["delivered"] > 50 and reports["csv"]["counts"]["received"] == 20
    rejected = {letter["reference"]: letter["reason"].split(":")[0] for letter in reports["faulty"]["letters"]
                if letter["status"] == "REJECTED"}
    assert {"logs-invalid": "INVALID_BSN", "logs-number": "FIELD_INVALID", "logs-dotted": "INVALID_BSN",
            "logs-sender": "UNKNOWN_SENDER", "logs-field": "UNKNOWN_FIELD"}.items() <= rejected.items()
    assert reports["faulty"]["counts"]["rejected"] == 6  # the five above and the broken line
    assert all(runs[name].output["status"] == "bad_file" for name in ("latin1", "unknown-tenant", "no-prefix"))
    assert sum(env.simulator.fault_counts.values()) > faults_before, "the faulty run met no fault"

    # And the capture really saw the run: every batch id is in the records and in Powertools' JSON
    # lines (as the correlation id), the root DEBUG line is there, and the EMF blobs are in stdout
    sources = {"log records": records.lines, "stdout": captured.out.splitlines(), "stderr": captured.err.splitlines()}
    sources.update({f"powertools {name}": buffer.getvalue().splitlines() for name, buffer in powertools.items()})
    powertools_lines = [line for name, lines in sources.items() if name.startswith("powertools") for line in lines]
    record_text, powertools_text = "\n".join(records.lines), "\n".join(powertools_lines)
    for name, run in runs.items():
        assert run.batch_id in record_text, f"{name}: batch id {run.batch_id} not in the captured log records"
        assert f'"correlation_id":"{run.batch_id}"' in powertools_text.replace(" ", ""), name
    assert {"ingest", "send", "fallback", "finalize"} <= set(powertools), sorted(powertools)
    assert any(line.startswith("{") and '"level":"INFO"' in line for line in powertools_lines)
    assert "capture check: root at DEBUG" in record_text
    # (EMF blobs are printed by the handlers' threads at once, so a line may hold more than one)
    emf = [line for line in sources["stdout"] if '{"_aws":{"Timestamp"' in line.replace(" ", "")]
    assert any('"LettersRejected"' in line for line in emf), "no EMF metric blob was captured"
    # And no captured line holds a BSN of the input, in any form, nor the letter text or a PDF
    assert leaks(sources, bsns) == []


def test_given_lines_with_a_bsn_in_any_form_or_letter_content_then_the_scan_finds_them():
    # The scan above can fail: one line per form it looks for
    bsn = "999991954"
    lines = ["bsn=999991954", "as int 999991954 here", "9999.91.954", "999 991 954", "9999-91-954",
             "text: " + LETTER_SENTENCE, "b'%PDF-1.7 ...'", "Inhoud JVBERi0xLjcK"]
    assert len(leaks({"test": lines}, {bsn})) == len(lines)
    assert leaks({"test": ["bsn ******954", "OIN 00000001899410741000", "batch 999991953", "id 1999991954"]}, {bsn}) == []
