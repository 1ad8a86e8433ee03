"""Cost: what 1,000,000 letters cost on AWS, from template.yaml and the counts of a load run.

    .venv/bin/python bench/cost_model.py [out/load/load-counts.json]

The counts come from `bench/load_pipeline.py` (state transitions, Lambda invocations and their
duration, requests per service, DynamoDB write and read units, S3 PUTs, log bytes), measured for
its run and scaled to a million letters; each function's memory and architecture come from
template.yaml. The prices are AWS's published on-demand list prices for eu-west-1 (Ireland),
without the free tier; each line says where it comes from. Beside bbconnect's design the same
letters are priced for a design with one Standard execution per letter (the chunk's path through
the state machine, its Lambda calls, a PDF and a status write per step, for every letter).

The last line is `USD per million letters: X` (target: at most 3).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "local"), str(REPO / "layers" / "bbconnect")]

MILLION = 1_000_000

# Published on-demand list prices, eu-west-1 (Ireland), USD; free tiers left out.
PRICES = {
    "sfn_transition": 0.025 / 1000,  # Step Functions Standard: $0.025 per 1,000 state transitions
    "lambda_request": 0.20 / MILLION,  # Lambda: $0.20 per 1M requests
    "lambda_gb_second_arm64": 0.0000133334,  # Lambda arm64 (Graviton): per GB-second, first 7.5 B GB-s/month
    "lambda_gb_second_x86_64": 0.0000166667,  # Lambda x86_64: per GB-second
    "sqs_request": 0.40 / MILLION,  # SQS standard queue: $0.40 per 1M requests (64 KB chunks)
    "dynamodb_wru": 0.7068 / MILLION,  # DynamoDB on-demand Standard, Ireland, after the Nov 2024 cut (half of $1.4135)
    "dynamodb_rru": 0.1415 / MILLION,  # idem, half of $0.283
    "s3_put": 0.005 / 1000,  # S3 Standard: PUT, COPY, POST, LIST $0.005 per 1,000
    "s3_get": 0.0004 / 1000,  # S3 Standard: GET, SELECT and other $0.0004 per 1,000
    "logs_ingest_gb": 0.57,  # CloudWatch Logs, Standard class, ingestion per GB (Ireland)
    "kms_request": 0.03 / 10_000,  # KMS: $0.03 per 10,000 requests
    "egress_gb": 0.09,  # data transfer out to the internet, first 10 TB/month, per GB
}
S3_PUT_LIKE = {"PutObject", "CopyObject", "ListObjectsV2", "ListObjects", "CreateMultipartUpload", "UploadPart",
               "CompleteMultipartUpload"}


@dataclass
class Line:
    what: str
    quantity: float
    unit: str
    usd: float


def function_settings(template_path: Path) -> dict[str, tuple[int, str]]:
    """logical id -> (memory MB, architecture), from the template's Globals and each function."""
    from bbconnect_local.template import load_template

    template = load_template(template_path)
    defaults = (template.get("Globals") or {}).get("Function") or {}
    settings = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        memory = int(properties.get("MemorySize", defaults.get("MemorySize", 128)))
        architecture = (properties.get("Architectures") or defaults.get("Architectures") or ["x86_64"])[0]
        settings[logical_id] = (memory, architecture)
    return settings


def bbconnect_lines(counts: dict, settings: dict[str, tuple[int, str]]) -> list[Line]:
    """bbconnect's bill for a million letters, from the counts of the run."""
    scale = MILLION / counts["letters"]
    requests, platform = counts["requests"], counts.get("platform_requests", {})
    lines = [Line("Step Functions state transitions", counts["state_transitions"] * scale, "transitions",
                  counts["state_transitions"] * scale * PRICES["sfn_transition"])]
    invocations = sum(use["invocations"] for use in counts["functions"].values())
    lines.append(Line("Lambda requests", invocations * scale, "invocations", invocations * scale * PRICES["lambda_request"]))
    compute = 0.0
    gb_seconds = 0.0
    for name, use in counts["functions"].items():
        memory, architecture = settings.get(name, (use["memory_mb"], "arm64"))
        seconds = use["busy_seconds"] * memory / 1024
        gb_seconds += seconds
        compute += seconds * PRICES[f"lambda_gb_second_{architecture.replace('-', '_')}"]
    # busy time: the handler's own CPU, its AWS calls and its wait for Logius (bbconnect_local.metering)
    lines.append(Line("Lambda compute (busy time x template memory)", gb_seconds * scale, "GB-s", compute * scale))
    sqs_triggered = sum(counts["functions"].get(name, {}).get("invocations", 0) for name in ("SendFunction", "StarterFunction"))
    sqs = (sum(n for op, n in requests.items() if op.startswith("sqs."))
           + platform.get("sqs.SendMessage", 0)  # Step Functions' sqs:sendMessage.waitForTaskToken
           + 2 * sqs_triggered)  # the event source mapping's receive and delete for each batch it hands over
    lines.append(Line("SQS requests", sqs * scale, "requests", sqs * scale * PRICES["sqs_request"]))
    lines.append(Line("DynamoDB write units", counts["dynamodb_write_units"] * scale, "WRU",
                      counts["dynamodb_write_units"] * scale * PRICES["dynamodb_wru"]))
    lines.append(Line("DynamoDB read units", counts["dynamodb_read_units"] * scale, "RRU",
                      counts["dynamodb_read_units"] * scale * PRICES["dynamodb_rru"]))
    puts = sum(n for op, n in requests.items() if op.startswith("s3.") and op[3:] in S3_PUT_LIKE) + platform.get("s3.PutObject", 0)
    gets = sum(n for op, n in requests.items() if op.startswith("s3.") and op[3:] not in S3_PUT_LIKE)
    lines.append(Line("S3 PUT/LIST requests", puts * scale, "requests", puts * scale * PRICES["s3_put"]))
    lines.append(Line("S3 GET/HEAD requests", gets * scale, "requests", gets * scale * PRICES["s3_get"]))
    kms = (puts + gets) * 0.01  # SSE-KMS with S3 Bucket Keys: a data key per bucket, not per object (~1 % of requests)
    lines.append(Line("KMS requests (S3 Bucket Keys)", kms * scale, "requests", kms * scale * PRICES["kms_request"]))
    # the functions' JSON logs and EMF metrics as written in the run, plus Lambda's own START, END and
    # REPORT lines (about 300 bytes an invocation)
    log_gb = (counts.get("log_bytes", 0) + 300 * invocations) * scale / 1024 ** 3
    lines.append(Line("CloudWatch Logs ingestion (logs and EMF metrics)", log_gb, "GB", log_gb * PRICES["logs_ingest_gb"]))
    return lines


def per_letter_lines(counts: dict, settings: dict[str, tuple[int, str]]) -> list[Line]:
    """The same letters with one Standard execution per letter: each letter walks the chunk's path
    through the state machine alone, with a Lambda call per task state, its own PDF object in S3 and
    a status write per step, as the per-letter designs do."""
    chunks = max(1, counts["functions"].get("RenderFunction", {}).get("invocations", 1))
    per_batch = {"Ingest", "AnyChunks", "ProcessChunks", "Finalize"}
    path = sum(n for state, n in counts["transitions_by_state"].items() if state not in per_batch) / chunks
    tasks = sum(use["invocations"] for name, use in counts["functions"].items()
                if name in ("CheckSubscriptionsFunction", "RenderFunction", "SendFunction", "AwaitResultFunction",
                            "FallbackFunction")) / chunks
    ours = {line.what: line for line in bbconnect_lines(counts, settings)}
    letters = MILLION
    lines = [
        Line("Step Functions state transitions", (path + 2) * letters, "transitions", (path + 2) * letters * PRICES["sfn_transition"]),
        Line("Lambda requests", tasks * letters, "invocations", tasks * letters * PRICES["lambda_request"]),
        ours["Lambda compute (busy time x template memory)"],  # the same work, counted as for bbconnect
        Line("SQS requests", 4 * letters, "requests", 4 * letters * PRICES["sqs_request"]),
        Line("DynamoDB write units (a status write per step)", 5 * letters, "WRU", 5 * letters * PRICES["dynamodb_wru"]),
        Line("S3 PUT requests (a PDF and a state object per letter)", 2 * letters, "requests", 2 * letters * PRICES["s3_put"]),
        ours["CloudWatch Logs ingestion (logs and EMF metrics)"],
    ]
    return lines


def _table(title: str, lines: list[Line]) -> float:
    total = sum(line.usd for line in lines)
    print(title)
    for line in lines:
        quantity = f"{line.quantity:14,.3f}" if line.unit == "GB" else f"{line.quantity:14,.0f}"
        print(f"  {line.what:52s} {quantity} {line.unit:12s} ${line.usd:9.2f}")
    print(f"  {'total':52s} {'':14s} {'':12s} ${total:9.2f}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("counts", nargs="?", type=Path, default=REPO / "out" / "load" / "load-counts.json")
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    args = parser.parse_args(argv)
    if not args.counts.is_file():
        print(f"no counts at {args.counts}: run bench/load_pipeline.py first", file=sys.stderr)
        return 2
    counts = json.loads(args.counts.read_text(encoding="utf-8"))
    settings = function_settings(args.template)
    print(f"from {args.counts} ({counts['letters']:,} letters measured) and {args.template.name}; "
          f"eu-west-1 on-demand list prices, per 1,000,000 letters")
    other = _table("one Standard execution per letter:", per_letter_lines(counts, settings))
    ours = _table("bbconnect (a Standard execution per file, a child execution per GLOBE batch of up to 1,000 letters):",
                  bbconnect_lines(counts, settings))
    digital_share = counts["report_counts"]["delivered"] / max(1, counts["letters"])
    # The GLOBE XML carries each digital letter's PDF base64-encoded: its size follows the letters'
    # (bench/render_benchmark.py prints the demo letters' median size).
    egress_gb = counts["floor"]["xml_bytes"] / max(1, counts["letters"]) * MILLION / 1024 ** 3
    per_digital_kb = counts["floor"]["xml_bytes"] / max(1, counts["report_counts"]["delivered"]) / 1000
    print(f"not in either figure, the same for any design: sending the GLOBE batches to Logius, {egress_gb:,.0f} GB "
          f"({digital_share:.0%} of the letters digital, {per_digital_kb:,.0f} kB of GLOBE XML each, the PDF in "
          f"base64) = ${egress_gb * PRICES['egress_gb']:.2f} at internet egress prices; storage, and fixed monthly "
          f"costs (alarms, dashboard, queues polled when idle)")
    print(f"bbconnect costs {ours / other:.1%} of the per-letter design")
    print(f"USD per million letters: {ours:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
