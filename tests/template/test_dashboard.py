"""template.yaml's CloudWatch side: one dashboard whose body is valid JSON naming the stack's real
resources, alarms that go to the alarm topic, and no `bbconnect` metric on either that the code
does not emit."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NAMESPACE = "bbconnect"
PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::StackName": "bbconnect",
          "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
# SEARCH('{Namespace,dim,...} MetricName="Name" dim="value"', 'Stat', period)
SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")
TERM = re.compile(r'(?P<key>[A-Za-z]+)="(?P<value>[^"]*)"')
NEW_ALARMS = ("IntakeDeadLetterAlarm", "SendDeadLetterAlarm", "BatchWithoutResultAlarm", "FailureRateAlarm",
              "BatchExecutionsFailedAlarm")



@pytest.fixture(scope="module")
def dashboard(template):
    dashboards = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Dashboard"}
    assert list(dashboards) == ["Dashboard"], "exactly one dashboard"
    return dashboards["Dashboard"]


@pytest.fixture(scope="module")
def body_text(dashboard) -> str:
    body = dashboard["Properties"]["DashboardBody"]
    assert set(body) == {"Fn::Sub"} and isinstance(body["Fn::Sub"], str), "the body is one Fn::Sub string"
    return body["Fn::Sub"]


def _dummy(template: dict, name: str) -> str:
    """What CloudFormation would put for ${name}: a parameter's default (a number stays a number),
    a pseudo parameter's example value, or a made-up physical name or ARN."""
    parameters = template.get("Parameters") or {}
    if name in parameters:
        return str(parameters[name]["Default"])
    if name in PSEUDO:
        return PSEUDO[name]
    resource, _, attribute = name.partition(".")
    return f"arn:aws:dummy:eu-west-1:123456789012:{resource}" if attribute == "Arn" else f"dummy-{resource}-{attribute or 'ref'}"


@pytest.fixture(scope="module")
def body(template, body_text) -> dict:
    return json.loads(PLACEHOLDER.sub(lambda m: _dummy(template, m.group(1)), body_text))


def _metric_rows(body: dict):
    """Every metric row of every metric widget, with "." (same as the row above) filled in."""
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        previous: list = []
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                yield widget, row
                continue
            parts = [p for p in row if not isinstance(p, dict)]
            parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
            previous = parts
            yield widget, parts + [p for p in row if isinstance(p, dict)]


def dashboard_metrics(body: dict) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric name, dimensions) of each metric the dashboard shows, SEARCH ones included
    (their dimensions are those the query pins to a value, plus the schema's)."""
    found = set()
    for _widget, row in _metric_rows(body):
        if isinstance(row[0], dict):
            expression = row[0].get("expression", "")
            for match in SEARCH.finditer(expression):
                schema = [part.strip().strip('"') for part in match.group("schema").split(",")]
                terms = {m.group("key"): m.group("value") for m in TERM.finditer(match.group("terms"))}
                name = terms.pop("MetricName", None)
                assert name, f"a SEARCH without MetricName: {expression}"
                dimensions = tuple(sorted({**dict.fromkeys(schema[1:], "*"), **terms}.items()))
                found.add((schema[0], name, dimensions))
            continue
        parts = [p for p in row if not isinstance(p, dict)]
        namespace, name, rest = parts[0], parts[1], parts[2:]
        found.add((namespace, name, tuple(sorted(zip(rest[::2], rest[1::2])))))
    return found


def alarm_metrics(template: dict) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    found = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [props] if "MetricName" in props else [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for stat in stats:
            dimensions = tuple(sorted((d["Name"], d["Value"]) for d in stat.get("Dimensions", []) if isinstance(d["Value"], str)))
            found.add((stat["Namespace"], stat["MetricName"], dimensions))
    return found


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def emitted_metric_names(repo_root: Path) -> set[str]:
    """The names the code emits: string literals in a call whose name says metric (add_metric,
    single_metric, count_by_stream, the send handler's _metric, Sender's self.metric callback) or in
    a constant whose name says it holds metric names (e.g. fallback's LETTER_METRICS)."""
    names: set[str] = set()
    for path in [*(repo_root / "functions").rglob("*.py"), *(repo_root / "layers").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            holders = []
            if isinstance(node, ast.Call) and "metric" in _callee(node).lower():
                holders = [*node.args, *(k.value for k in node.keywords)]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and "METRIC" in t.id.upper() for t in targets) and node.value is not None:
                    holders = [node.value]
            for holder in holders:
                names.update(c.value for c in ast.walk(holder) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return names


def metric_services(repo_root: Path) -> set[str]:
    """The `service` dimension values the handlers' Metrics carry (metrics_for("...") in functions/)."""
    return {m.group(1) for path in (repo_root / "functions").rglob("app.py")
            for m in re.finditer(r'metrics_for\("([^"]+)"\)', path.read_text(encoding="utf-8"))}


# ---------------------------------------------------------------------- the body
def test_given_the_dashboard_body_when_its_placeholders_are_filled_then_it_is_json_with_widgets(body):
    assert body["widgets"], "no widgets"
    for widget in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24, widget["properties"].get("title")
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PSEUDO["AWS::Region"]
            assert widget["properties"]["metrics"]


def test_given_the_dashboard_body_then_every_placeholder_names_a_resource_parameter_or_pseudo_parameter(template, body_text):
    resources, parameters = template["Resources"], template.get("Parameters") or {}
    names = PLACEHOLDER.findall(body_text)
    assert names
    for name in names:
        resource, _, attribute = name.partition(".")
        assert name in PSEUDO or name in parameters or resource in resources, f"${{{name}}} names nothing in the template"
        if attribute:
            assert (resources[resource]["Type"], attribute) in {("AWS::SQS::Queue", "QueueName"), ("AWS::SQS::Queue", "Arn"),
                                                               ("AWS::CloudWatch::Alarm", "Arn")}, name


def test_given_the_dashboard_then_it_names_the_stacks_queues_functions_tables_and_state_machine(template, body_text):
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            assert f"${{{logical_id}.QueueName}}" in body_text, logical_id
        elif kind in ("AWS::Serverless::Function", "AWS::DynamoDB::Table", "AWS::Serverless::StateMachine"):
            assert f"${{{logical_id}}}" in body_text, logical_id


def test_given_the_dashboard_then_it_has_the_technical_widgets(template, body):
    shown = {(namespace, name) for namespace, name, _ in dashboard_metrics(body)}
    for expected in [("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
                     ("AWS/States", "ExecutionsFailed"), ("AWS/States", "ExecutionsTimedOut"),
                     ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"),
                     ("AWS/DynamoDB", "ThrottledRequests"), ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents"),
                     (NAMESPACE, "LogiusEbmsLatency"), (NAMESPACE, "LogiusWusLatency")]:
        assert expected in shown, expected
    rows = [row for _w, row in _metric_rows(body) if not isinstance(row[0], dict)]
    functions = {f"dummy-{k}-ref" for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    for metric in ("Errors", "Throttles"):
        shown_functions = {row[3] for row in rows if row[:3] == ["AWS/Lambda", metric, "FunctionName"]}
        assert shown_functions == functions, f"{metric}: one line per function"


def test_given_the_dashboard_then_it_has_the_business_kpis_with_digital_reach_as_metric_math(body):
    shown = {(namespace, name, dims) for namespace, name, dims in dashboard_metrics(body)}
    names = {name for namespace, name, _ in shown if namespace == NAMESPACE}
    assert {"LettersReceived", "LettersRejected", "LettersDelivered", "LettersPaper", "LettersFailed"} <= names
    by_stream = {name for namespace, name, dims in shown if namespace == NAMESPACE and "stream" in dict(dims)}
    assert {"LettersReceived", "LettersRejected", "LettersDelivered", "LettersPaper", "LettersFailed"} <= by_stream
    expressions = [row[0]["expression"] for _w, row in _metric_rows(body) if isinstance(row[0], dict) and "expression" in row[0]]
    reach = [e for e in expressions if re.search(r"delivered\b.*/\s*\(.*delivered.*\+.*paper", e)]
    assert reach, "digital reach = delivered / (delivered + paper)"


# ---------------------------------------------------------------------- only what the code emits
def test_given_the_dashboard_and_the_alarms_then_every_bbconnect_metric_is_emitted_by_the_code(template, body, repo_root):
    emitted = emitted_metric_names(repo_root)
    services = metric_services(repo_root)
    named = {m for m in dashboard_metrics(body) | alarm_metrics(template) if m[0] == NAMESPACE}
    assert named, "no bbconnect metric on the dashboard or the alarms"
    for _namespace, name, dimensions in named:
        assert name in emitted, f"{name} is on the dashboard or an alarm, but no add_metric/callback emits it"
        service = dict(dimensions).get("service")
        assert service in services, f"{name}: service {service!r} is not a handler's metrics service"
        assert set(dict(dimensions)) <= {"service", "stream"}, f"{name}: the code emits no dimension beyond service and stream"


def test_given_the_emitted_names_check_then_it_does_not_accept_a_name_nobody_emits(repo_root):
    emitted = emitted_metric_names(repo_root)
    assert {"LettersFailed", "EbmsRetries", "GlobeBatchesExpired", "BatchesWithoutResult24h", "LogiusEbmsLatency"} <= emitted
    assert "LettersLost" not in emitted


# ---------------------------------------------------------------------- alarms and output
def _alarms(template: dict) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_given_the_alarms_then_each_goes_to_the_alarm_topic(template):
    alarms = _alarms(template)
    assert set(NEW_ALARMS) | {"GlobeBatchExpiredAlarm"} <= set(alarms)
    for name, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["Properties"]["AlarmActions"], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def test_given_the_dead_letter_alarms_then_they_fire_when_a_dlq_is_not_empty(template):
    alarms = _alarms(template)
    for name, queue in (("IntakeDeadLetterAlarm", "IntakeDeadLetterQueue"), ("SendDeadLetterAlarm", "SendDeadLetterQueue")):
        props = alarms[name]["Properties"]
        assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)


def test_given_the_batch_without_result_alarm_then_it_watches_the_await_result_metric(template):
    props = _alarms(template)["BatchWithoutResultAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (NAMESPACE, "BatchesWithoutResult24h")
    assert props["Dimensions"] == [{"Name": "service", "Value": "await-result"}]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)


def test_given_the_failure_rate_alarm_then_it_divides_failed_by_all_final_states_against_the_parameter(template):
    parameter = template["Parameters"]["FailureRateThreshold"]
    assert parameter["Type"] == "Number" and parameter["Default"] == 0.05
    props = _alarms(template)["FailureRateAlarm"]["Properties"]
    assert props["Threshold"] == {"Ref": "FailureRateThreshold"} and props["ComparisonOperator"] == "GreaterThanThreshold"
    metrics = {m["Id"]: m for m in props["Metrics"]}
    assert [m["Id"] for m in props["Metrics"] if m.get("ReturnData", True)] == ["failurerate"]
    stats = {i: m["MetricStat"]["Metric"]["MetricName"] for i, m in metrics.items() if "MetricStat" in m}
    assert stats == {"delivered": "LettersDelivered", "paper": "LettersPaper", "failed": "LettersFailed"}
    decided = metrics["decided"]["Expression"]
    assert all(i in decided for i in ("delivered", "paper", "failed"))
    assert "failed" in metrics["failurerate"]["Expression"] and "decided" in metrics["failurerate"]["Expression"]


def test_given_the_step_functions_alarm_then_it_watches_the_batch_state_machine(template):
    props = _alarms(template)["BatchExecutionsFailedAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert props["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "BatchStateMachine"}}]


def test_given_the_outputs_then_the_dashboard_url_opens_the_dashboard_in_the_stacks_region(template):
    url = template["Outputs"]["DashboardURL"]["Value"]
    assert url == {"Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards:name=${Dashboard}"}
