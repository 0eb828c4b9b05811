"""Tracing switched on as inside Lambda, with the real aws-xray-sdk recorder, under a
segment the test opens and then inspects (no X-Ray daemon: nothing is sent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_xray_sdk
import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import xray_recorder
from jobs_core import tracing


@pytest.fixture
def segment() -> Iterator[Any]:
    """The tracer the functions use when tracing is on: Powertools' Tracer on the real
    recorder (nothing patched, so other tests' clients stay as they were)."""
    tracing.set_tracer(Tracer(disabled=False, auto_patch=False))
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    # Record everything (no daemon to ask) and keep closed subsegments for the test to read.
    xray_recorder.configure(sampling=False, streaming_threshold=1000)
    opened = xray_recorder.begin_segment("test")
    try:
        yield opened
    finally:
        xray_recorder.end_segment()
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)
        tracing.set_tracer(None)
        Tracer._reset_config()  # Powertools keeps a Tracer's settings per process


def annotated(entity: Any) -> list[dict[str, Any]]:
    """The name and annotations of every subsegment under ``entity``, depth first."""
    found = []
    for sub in entity.subsegments:
        found.append({"name": sub.name, **sub.annotations})
        found += annotated(sub)
    return found
