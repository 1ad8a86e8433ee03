"""Shared test fixtures.

`shared_dir` points at the read-only `../shared` folder beside the clone (the Logius schemas, the
ebMS schemas, the docs). A user's own clone may not have it: tests that need it skip with a reason.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "logius").is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}): the official Logius schemas live there")
    return SHARED_DIR


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def nothing_aws_would_refuse():
    """A test that ran the local deployment passes only if AWS would have let every call through:
    each function's own role allowed it and no limit was exceeded (`bbconnect_local.iam.enforcer`).
    A test that provokes a refusal on purpose takes it with `take_all_violations()`."""
    yield
    from bbconnect_local.iam.enforcer import take_all_violations

    refused = take_all_violations()
    assert not refused, "calls AWS would refuse:\n" + "\n".join(str(violation) for violation in refused[:20])
