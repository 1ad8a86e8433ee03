"""Which tenant gets which status events (bbconnect.event_routing) and the tenant configuration that
names the targets (bbconnect.tenants.EventTargets)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bbconnect.event_routing import (
    RETRY_POLICY,
    RoutingError,
    connection_auth,
    event_pattern,
    queue_policy_statement,
    replay_request,
    rule_arn,
    rule_name,
    targets,
    webhook_name,
)
from bbconnect.tenants import EventTargets, TenantConfigError, WebhookAuth, load_tenant_config

BUS_ARN = "arn:aws:events:eu-west-1:123456789012:event-bus/bbconnect-letter-status"
ARCHIVE_ARN = "arn:aws:events:eu-west-1:123456789012:archive/bbconnect-StatusEventArchive"
QUEUE = "arn:aws:sqs:eu-west-1:210987654321:lv-status"
DESTINATION = "arn:aws:events:eu-west-1:123456789012:api-destination/bbconnect-letter-status-gemeente-lv/abc"
ROLE = "arn:aws:iam::123456789012:role/bbconnect-StatusEventDeliveryRole"
NOW = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)


def test_given_a_tenant_then_its_rule_matches_its_own_tenant_id_exactly_and_bbconnects_source():
    assert event_pattern("gemeente-lv") == {"source": ["bbconnect"], "detail": {"tenant": ["gemeente-lv"]}}
    assert rule_name("gemeente-lv") == "tenant-gemeente-lv"
    assert rule_arn(BUS_ARN, "gemeente-lv") == "arn:aws:events:eu-west-1:123456789012:rule/bbconnect-letter-status/tenant-gemeente-lv"


def test_given_a_stack_name_too_long_for_a_connection_name_then_it_is_refused_not_cut():
    with pytest.raises(RoutingError, match="shorter stack name"):
        webhook_name("x" * 60 + "-letter-status", "gemeente-lv")


@pytest.mark.parametrize(("configured", "expected"), [
    ({"queue_arn": QUEUE}, [("queue", QUEUE, None)]),
    ({"webhook": {"url": "https://zaken.example/hook", "auth": {"type": "api_key", "header": "x-api-key",
                                                                "secret": "secretsmanager:bbconnect/gemeente-lv/hook"}}},
     [("webhook", DESTINATION, ROLE)]),
    ({"queue_arn": QUEUE, "webhook": {"url": "https://zaken.example/hook",
                                      "auth": {"type": "api_key", "header": "x-api-key", "secret": "secretsmanager:bbconnect/gemeente-lv/hook"}}},
     [("queue", QUEUE, None), ("webhook", DESTINATION, ROLE)]),
])
def test_given_the_configured_targets_then_the_rule_gets_each_with_the_retry_policy_and_the_dead_letter_queue(configured, expected):
    planned = targets(EventTargets.model_validate(configured), api_destination_arn=DESTINATION, delivery_role_arn=ROLE)
    assert [(t.id, t.arn, t.role_arn) for t in planned] == expected
    for target in planned:
        request = target.request("arn:aws:sqs:eu-west-1:123456789012:status-dlq")
        assert request["RetryPolicy"] == RETRY_POLICY and request["DeadLetterConfig"]["Arn"].endswith("status-dlq")
        assert ("RoleArn" in request) is (target.id == "webhook")


@pytest.mark.parametrize(("auth", "kind", "parameters"), [
    (WebhookAuth(type="api_key", header="x-api-key", secret="secretsmanager:bbconnect/t/k"), "API_KEY",
     {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "s3cr3t"}}),
    (WebhookAuth(type="oauth_client_credentials", token_url="https://login.example/token", client_id="bbc",
                 secret="secretsmanager:bbconnect/t/k"), "OAUTH_CLIENT_CREDENTIALS",
     {"OAuthParameters": {"ClientParameters": {"ClientID": "bbc", "ClientSecret": "s3cr3t"},
                          "AuthorizationEndpoint": "https://login.example/token", "HttpMethod": "POST"}}),
    (WebhookAuth(type="oauth_client_credentials", token_url="https://login.example/token", client_id="bbc", scope="status",
                 secret="secretsmanager:bbconnect/t/k"), "OAUTH_CLIENT_CREDENTIALS",
     {"OAuthParameters": {"ClientParameters": {"ClientID": "bbc", "ClientSecret": "s3cr3t"},
                          "AuthorizationEndpoint": "https://login.example/token", "HttpMethod": "POST",
                          "OAuthHttpParameters": {"BodyParameters": [{"Key": "scope", "Value": "status", "IsValueSecret": False}]}}}),
])
def test_given_the_webhooks_credentials_then_the_connection_holds_them_as_eventbridge_takes_them(auth, kind, parameters):
    assert connection_auth(auth, "s3cr3t") == (kind, parameters)


def test_given_an_empty_secret_then_no_connection_is_made_with_it():
    with pytest.raises(RoutingError, match="empty"):
        connection_auth(WebhookAuth(type="api_key", header="x-api-key", secret="secretsmanager:bbconnect/t/k"), "")


def test_given_the_tenants_queue_then_its_policy_lets_only_the_tenants_rule_send():
    rule = rule_arn(BUS_ARN, "gemeente-lv")
    statement = queue_policy_statement(QUEUE, rule)
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == QUEUE and statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule}}


# ------------------------------------------------------------------------------------------ replay
def test_given_a_tenant_and_a_day_when_a_replay_is_asked_then_the_archive_replays_to_that_tenants_rule_only():
    since = datetime(2027, 2, 26, tzinfo=UTC)
    request = replay_request(tenant="gemeente-lv", archive_arn=ARCHIVE_ARN, bus_arn=BUS_ARN, since=since, until=NOW, now=NOW)
    assert request == {
        "ReplayName": "gemeente-lv-20270302T080000",
        "Description": "status events of tenant gemeente-lv from 2027-02-26T00:00:00+00:00 to 2027-03-02T08:00:00+00:00",
        "EventSourceArn": ARCHIVE_ARN, "EventStartTime": since, "EventEndTime": NOW,
        "Destination": {"Arn": BUS_ARN, "FilterArns": [rule_arn(BUS_ARN, "gemeente-lv")]},
    }


@pytest.mark.parametrize(("since", "until", "complaint"), [
    (NOW, NOW, "before until"),
    (NOW - timedelta(days=1), NOW + timedelta(hours=1), "future"),
    (datetime(2027, 2, 26), NOW, "time zone"),
])
def test_given_a_window_that_cannot_be_replayed_then_it_is_refused(since, until, complaint):
    with pytest.raises(RoutingError, match=complaint):
        replay_request(tenant="gemeente-lv", archive_arn=ARCHIVE_ARN, bus_arn=BUS_ARN, since=since, until=until, now=NOW)


# ------------------------------------------------------------------------------ the configuration
def _config(repo_root, **event_targets) -> bytes:
    config = json.loads((repo_root / "config" / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["event_targets"] = event_targets
    return json.dumps(config).encode()


HOOK = {"url": "https://zaken.example/hook", "auth": {"type": "api_key", "header": "x-api-key",
                                                      "secret": "secretsmanager:bbconnect/gemeente-lv/hook"}}


@pytest.mark.parametrize(("event_targets", "complaint"), [
    ({}, "name a queue_arn, a webhook or both"),
    ({"queue_arn": "arn:aws:sns:eu-west-1:210987654321:topic"}, "event_targets.queue_arn"),
    ({"queue_arn": QUEUE + ".fifo"}, "standard queue, not FIFO"),
    ({"webhook": {**HOOK, "url": "http://zaken.example/hook"}}, "https:// URL"),
    ({"webhook": {**HOOK, "auth": {"type": "api_key", "secret": "secretsmanager:bbconnect/gemeente-lv/hook"}}}, "needs header"),
    ({"webhook": {**HOOK, "auth": {"type": "oauth_client_credentials", "client_id": "x",
                                   "secret": "secretsmanager:bbconnect/gemeente-lv/hook"}}}, "needs token_url"),
    ({"webhook": {**HOOK, "auth": {**HOOK["auth"], "secret": "secretsmanager:bbconnect/gemeente-tilburg/hook"}}},
     "not in tenant 'gemeente-lv'"),
    ({"webhook": {**HOOK, "auth": {**HOOK["auth"], "secret": "the key itself"}}}, "must be a reference"),
])
def test_given_event_targets_that_cannot_work_when_loaded_then_the_configuration_is_refused_with_why(repo_root, event_targets,
                                                                                                     complaint):
    with pytest.raises(TenantConfigError) as refused:
        load_tenant_config(_config(repo_root, **event_targets), source="gemeente-lv.json")
    assert complaint in str(refused.value)


def test_given_the_shipped_demo_tenant_then_it_names_a_queue_and_a_webhook(repo_root):
    config = load_tenant_config((repo_root / "config" / "tenants" / "gemeente-lv.json").read_bytes(), source="gemeente-lv.json")
    assert config.event_targets.queue_arn and config.event_targets.webhook.auth.type == "api_key"
