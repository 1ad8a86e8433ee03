"""template.yaml's status-event side, as AWS deploys it: one bus and its archive for the audit
retention; only the functions that record status changes may put events, and only on that bus;
EventBridge may call only this stack's tenant webhooks and dead-letter only from this bus's rules."""
from __future__ import annotations

from bbconnect_local.iam.policy import Request, evaluate

PUBLISHERS = {"IngestFunction": "ingest", "SendFunction": "send", "ReceiveResultFunction": "receive-result",
              "FallbackFunction": "fallback", "FinalizeFunction": "finalize"}





def test_given_the_bus_then_its_archive_keeps_every_bbconnect_event_as_long_as_the_audit_trail(template):
    resources = template["Resources"]
    assert resources["StatusEventBus"]["Type"] == "AWS::Events::EventBus"
    archive = resources["StatusEventArchive"]["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": ["StatusEventBus", "Arn"]}
    assert archive["RetentionDays"] == {"Ref": "AuditRetentionDays"} and archive["EventPattern"] == {"source": ["bbconnect"]}


def test_given_the_functions_then_those_that_record_status_changes_put_events_on_the_bus_and_no_other_may(template, roles, named):
    bus = named.physical["StatusEventBus"]["Arn"]
    elsewhere = bus.replace("letter-status", "someone-elses-bus")
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        may = evaluate(roles[name].statements, Request("events:PutEvents", bus)).allowed
        assert may is (name in PUBLISHERS), name
        assert (variables.get("EVENT_BUS_NAME") == {"Ref": "StatusEventBus"}) is (name in PUBLISHERS), name
        assert not evaluate(roles[name].statements, Request("events:PutEvents", elsewhere)).allowed, name


def test_given_the_delivery_role_then_eventbridge_may_call_only_this_stacks_tenant_webhooks(template, named):
    role = named.resolver.resolve(template["Resources"]["StatusEventDeliveryRole"]["Properties"])
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    bus = named.physical["StatusEventBus"]["Ref"]
    ours = f"arn:aws:events:eu-west-1:123456789012:api-destination/{bus}-gemeente-lv/0f1e2d3c"
    other = "arn:aws:events:eu-west-1:123456789012:api-destination/another-stack-gemeente-lv/0f1e2d3c"
    assert evaluate(statements, Request("events:InvokeApiDestination", ours)).allowed
    assert not evaluate(statements, Request("events:InvokeApiDestination", other)).allowed
    assert not evaluate(statements, Request("events:PutEvents", named.physical["StatusEventBus"]["Arn"])).allowed


def test_given_the_dead_letter_queue_then_only_rules_of_this_bus_may_send_to_it_and_an_alarm_watches_it(template, named):
    policy = named.resolver.resolve(template["Resources"]["StatusEventDeadLetterQueuePolicy"]["Properties"])
    [statement] = policy["PolicyDocument"]["Statement"]
    bus = named.physical["StatusEventBus"]["Ref"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnLike": {"aws:SourceArn": f"arn:aws:events:eu-west-1:123456789012:rule/{bus}/*"}}
    alarm = template["Resources"]["StatusEventDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StatusEventDeadLetterQueue", "QueueName"]}}]


def test_given_the_undelivered_events_alarm_then_it_sums_every_publishing_functions_count(template):
    alarm = template["Resources"]["StatusEventsUndeliveredAlarm"]["Properties"]
    stats = [m for m in alarm["Metrics"] if "MetricStat" in m]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in stats} == {"StatusEventsUndelivered"}
    assert {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in stats} == set(PUBLISHERS.values())
    [total] = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert all(f"FILL({m['Id']}, 0)" in total["Expression"] for m in stats)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_given_the_outputs_then_ops_finds_the_bus_archive_role_and_dead_letter_queue(template):
    assert {"StatusEventBusName", "StatusEventBusArn", "StatusEventArchiveArn", "StatusEventDeliveryRoleArn",
            "StatusEventDeadLetterQueueArn"} <= set(template["Outputs"])
