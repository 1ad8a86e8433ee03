"""How AWS decides whether an identity-based policy lets a request through.

A request is an IAM action (`s3:GetObject`), the ARN of the resource it acts on (`*` for actions that
have no resource-level permissions) and the request's context keys. The decision follows AWS's
evaluation logic for one principal's identity-based policies:

1. an explicit `Deny` in any statement that applies wins;
2. otherwise an `Allow` in any statement that applies lets the request through;
3. otherwise the request is denied implicitly.

A statement applies when its `Action` (or `NotAction`), its `Resource` (or `NotResource`) and every
one of its `Condition`s match. Actions match case-insensitively, resources case-sensitively; both
take `*` and `?` as wildcards. Conditions implement the operators AWS documents (String*, Arn*,
Numeric*, Date*, Bool, Null, with `...IfExists` and the `ForAnyValue:` / `ForAllValues:` set
qualifiers); an operator this module does not know is an error, never silently true.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any


class PolicyError(ValueError):
    """The policy document cannot be evaluated (an unknown condition operator, a malformed statement)."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    statement: str | None = None  # the Sid (or position) of the deciding statement

    @property
    def reason(self) -> str:
        if self.allowed:
            return f"allowed by {self.statement}"
        if self.explicit_deny:
            return f"with an explicit deny in an identity-based policy ({self.statement})"
        return "because no identity-based policy allows the action"


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern:
    """A policy wildcard (`*` any run of characters, `?` one character) as an anchored regex."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches_wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(matches_wildcard(p, action, ignore_case=True) for p in patterns)


def _resource_matches(patterns: Iterable[str], resource: str) -> bool:
    for pattern in patterns:
        if pattern == "*":
            return True
        if resource == "*":
            # An action without resource-level permissions is authorised against "*" only: a
            # statement that names ARNs does not grant it (AWS: "you must specify all resources").
            continue
        if matches_wildcard(pattern, resource):
            return True
    return False


# ---------------------------------------------------------------------- conditions
def _parse_date(value: Any) -> datetime:
    text = str(value)
    if text.isdigit():
        from datetime import UTC

        return datetime.fromtimestamp(int(text), UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own, wildcards within a part."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(matches_wildcard(p, v) for p, v in zip(pattern_parts, value_parts))


def _compare(base: str, policy_value: Any, request_value: Any) -> bool:
    if base in ("StringEquals",):
        return str(request_value) == str(policy_value)
    if base == "StringEqualsIgnoreCase":
        return str(request_value).lower() == str(policy_value).lower()
    if base == "StringLike":
        return matches_wildcard(str(policy_value), str(request_value))
    if base in ("ArnEquals", "ArnLike"):
        return _arn_like(str(policy_value), str(request_value))
    if base == "Bool":
        return str(request_value).lower() == str(policy_value).lower()
    if base.startswith("Numeric"):
        left, right = float(request_value), float(policy_value)
        return {"NumericEquals": left == right, "NumericLessThan": left < right, "NumericLessThanEquals": left <= right,
                "NumericGreaterThan": left > right, "NumericGreaterThanEquals": left >= right}[base]
    if base.startswith("Date"):
        left, right = _parse_date(request_value), _parse_date(policy_value)
        return {"DateEquals": left == right, "DateLessThan": left < right, "DateLessThanEquals": left <= right,
                "DateGreaterThan": left > right, "DateGreaterThanEquals": left >= right}[base]
    raise PolicyError(f"unknown condition operator {base!r}")


_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
            "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals"}
_POSITIVE = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool", "NumericEquals",
             "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
             "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "BinaryEquals"}


def _context_value(context: Mapping[str, Any], key: str) -> Any:
    for name, value in context.items():  # condition keys are case-insensitive
        if name.lower() == key.lower():
            return value
    return None


def _condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, Any]) -> bool:
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            raise PolicyError(f"unknown condition set qualifier {qualifier!r}")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    value = _context_value(context, key)
    wanted = _as_list(policy_values)
    if base == "Null":
        return (value is None) == (str(wanted[0]).lower() == "true")
    if base not in _POSITIVE and base not in _NEGATED:
        raise PolicyError(f"unknown condition operator {operator!r}")
    if value is None:
        # A missing key: true for ...IfExists and for the negated operators, false otherwise;
        # ForAllValues over an empty set is true.
        return if_exists or base in _NEGATED or qualifier == "ForAllValues"
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)
    values = _as_list(value)

    def one(request_value: Any) -> bool:
        hit = any(_compare(positive, policy_value, request_value) for policy_value in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, Any]) -> bool:
    for operator, keys in (conditions or {}).items():
        for key, policy_values in keys.items():
            if not _condition_holds(operator, key, policy_values, context):
                return False
    return True


# ---------------------------------------------------------------------- statements and policies
def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _action_matches(_as_list(statement["Action"]), request.action):
            return False
    elif "NotAction" in statement:
        if _action_matches(_as_list(statement["NotAction"]), request.action):
            return False
    else:
        raise PolicyError(f"a statement without Action or NotAction: {statement!r}")
    if "Resource" in statement:
        if not _resource_matches(_as_list(statement["Resource"]), request.resource):
            return False
    elif "NotResource" in statement:
        if _resource_matches(_as_list(statement["NotResource"]), request.resource):
            return False
    else:
        raise PolicyError(f"a statement without Resource or NotResource: {statement!r}")
    return _conditions_hold(statement.get("Condition"), request.context)


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """AWS's decision for one request against a principal's identity-based policy statements."""
    allowed_by = None
    for position, statement in enumerate(statements):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"a statement with Effect {effect!r}")
        if not statement_applies(statement, request):
            continue
        name = statement.get("Sid") or f"statement {position}"
        if effect == "Deny":
            return Decision(False, explicit_deny=True, statement=name)
        allowed_by = allowed_by or name
    return Decision(allowed_by is not None, statement=allowed_by)
