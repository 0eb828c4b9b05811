"""Tracing switched on as inside Lambda, with the real aws-xray-sdk recorder, under a
segment the test opens and then inspects (no X-Ray daemon: nothing is sent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_xray_sdk
import pytest
from aws_xray_sdk.core import xray_recorder
from jobs_core import tracer


@pytest.fixture
def segment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(tracer, "disabled", False)
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(sampling=False)  # record everything; no daemon to ask
    opened = xray_recorder.begin_segment("test")
    try:
        yield opened
    finally:
        xray_recorder.end_segment()
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)


def annotated(entity: Any) -> list[dict[str, Any]]:
    """The name and annotations of every subsegment under ``entity``, depth first."""
    found = []
    for sub in entity.subsegments:
        found.append({"name": sub.name, **sub.annotations})
        found += annotated(sub)
    return found
