"""The local IAM evaluator decides as AWS documents it: explicit deny wins, then an allow, else an
implicit deny; Action/NotAction, Resource/NotResource and conditions as AWS matches them."""
from __future__ import annotations

import pytest

from bbconnect_local.iam.policy import PolicyError, Request, evaluate, matches_wildcard

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/letters"
OBJECT = "arn:aws:s3:::work/batches/b1/source.json"
QUEUE = "arn:aws:sqs:eu-west-1:123456789012:send"


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize("statements, request_, allowed, explicit", [
    # an allow that names the action and the resource
    ([allow("dynamodb:GetItem", TABLE)], Request("dynamodb:GetItem", TABLE), True, False),
    # no statement for the action: implicitly denied
    ([allow("dynamodb:GetItem", TABLE)], Request("dynamodb:PutItem", TABLE), False, False),
    # actions match case-insensitively, resources case-sensitively
    ([allow("DynamoDB:getitem", TABLE)], Request("dynamodb:GetItem", TABLE), True, False),
    ([allow("dynamodb:GetItem", TABLE.upper())], Request("dynamodb:GetItem", TABLE), False, False),
    # wildcards in actions and resources
    ([allow("sqs:SendMessage*", QUEUE)], Request("sqs:SendMessage", QUEUE), True, False),
    ([allow("s3:GetObject", "arn:aws:s3:::work/*")], Request("s3:GetObject", OBJECT), True, False),
    ([allow("s3:GetObject", "arn:aws:s3:::work")], Request("s3:GetObject", OBJECT), False, False),
    ([allow("s3:GetObject", "arn:aws:s3:::wor?/*")], Request("s3:GetObject", OBJECT), True, False),
    # an explicit deny wins over any allow
    ([allow("s3:*", "*"), deny("s3:DeleteObject", "arn:aws:s3:::work/*")], Request("s3:DeleteObject", OBJECT), False, True),
    # NotResource: the managed SQS policy kept to one queue by a Deny
    ([allow(["sqs:ReceiveMessage"], "*"), {"Effect": "Deny", "Action": "sqs:ReceiveMessage", "NotResource": QUEUE}],
     Request("sqs:ReceiveMessage", QUEUE), True, False),
    ([allow(["sqs:ReceiveMessage"], "*"), {"Effect": "Deny", "Action": "sqs:ReceiveMessage", "NotResource": QUEUE}],
     Request("sqs:ReceiveMessage", QUEUE + "-other"), False, True),
    # NotAction
    ([{"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}], Request("s3:GetObject", OBJECT), True, False),
    ([{"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}], Request("s3:DeleteObject", OBJECT), False, False),
    # an action without resource-level permissions is authorised on "*" only: naming an ARN grants nothing
    ([allow("states:SendTaskSuccess", "arn:aws:states:eu-west-1:123456789012:stateMachine:batch")],
     Request("states:SendTaskSuccess", "*"), False, False),
    ([allow("states:SendTaskSuccess", "*")], Request("states:SendTaskSuccess", "*"), True, False),
])
def test_given_statements_when_a_request_is_evaluated_then_the_decision_is_awss(statements, request_, allowed, explicit):
    decision = evaluate(statements, request_)
    assert (decision.allowed, decision.explicit_deny) == (allowed, explicit)


@pytest.mark.parametrize("condition, context, applies", [
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
    ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, {"aws:SourceAccount": "123456789012"}, True),
    ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, {}, False),  # a missing key does not match
    ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {}, True),  # ... except for a negated operator
    ({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {}, True),
    ({"StringLike": {"s3:prefix": "tenants/*"}}, {"s3:prefix": "tenants/lv.json"}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::in*"}}, {"aws:SourceArn": "arn:aws:s3:::inbox"}, True),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
    ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
    ({"ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "status"]}}, {"dynamodb:Attributes": ["pk"]}, True),
    ({"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["pk"]}}, {"dynamodb:Attributes": ["x", "pk"]}, True),
])
def test_given_a_condition_when_evaluated_then_it_holds_as_on_aws(condition, context, applies):
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}
    assert evaluate([statement], Request("s3:GetObject", OBJECT, context)).allowed is applies


def test_given_an_unknown_condition_operator_then_the_evaluation_refuses_rather_than_guesses():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringSometimes": {"k": "v"}}}
    with pytest.raises(PolicyError, match="StringSometimes"):
        evaluate([statement], Request("s3:GetObject", OBJECT, {"k": "v"}))


def test_given_a_deny_then_its_reason_says_so_and_an_implicit_deny_says_no_policy_allows():
    assert "explicit deny" in evaluate([deny("s3:*", "*")], Request("s3:GetObject", OBJECT)).reason
    assert "no identity-based policy allows" in evaluate([], Request("s3:GetObject", OBJECT)).reason


@pytest.mark.parametrize("pattern, value, matches", [
    ("a*c", "abbbc", True), ("a?c", "abc", True), ("a?c", "abbc", False), ("a.c", "abc", False), ("*", "", True),
])
def test_given_a_wildcard_then_only_star_and_question_mark_are_special(pattern, value, matches):
    assert matches_wildcard(pattern, value) is matches
