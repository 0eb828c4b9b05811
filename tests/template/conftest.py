"""Fixtures of the template tests: the parsed template and its SAM-transformed twin."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import load_template, sam_transform


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def transformed() -> dict[str, Any]:
    return sam_transform()
