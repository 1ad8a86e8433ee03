"""The template as the tests read it: as written, as AWS deploys it (after the SAM transform, made
offline with SAM's own translator), its resources named as the local run names them, and each
function's role after the transform."""
from __future__ import annotations

import pytest

from bbconnect_local.deployment import LocalDeployment
from bbconnect_local.iam.roles import principals, translate
from bbconnect_local.template import load_template


@pytest.fixture(scope="module")
def template(repo_root) -> dict:
    return load_template(repo_root / "template.yaml")


@pytest.fixture(scope="module")
def deployed(template) -> dict:
    return translate(template)


@pytest.fixture(scope="module")
def named(repo_root):
    """The stack's resources with names, as the local run gives them (nothing is created)."""
    deployment = LocalDeployment(repo_root / "template.yaml")
    deployment._name_everything()
    return deployment


@pytest.fixture(scope="module")
def roles(deployed, named):
    return principals(deployed, resolve=named.resolver.resolve, stack_name="bbconnect-local", account="123456789012")
