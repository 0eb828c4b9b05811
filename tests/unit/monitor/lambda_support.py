"""A fake Lambda context, and a stream that lets ``capsys`` see Powertools' log lines."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and our handlers read from a Lambda context."""

    function_name: str = "escrow-jobs-test-monitor"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-west-1:123456789012:function:escrow-jobs-test-monitor"
    )
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    remaining_ms: int = 15_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at write time.

    Powertools' Logger binds ``sys.stdout`` when it is created (at import); pytest's
    ``capsys`` swaps ``sys.stdout`` per test. Pointing the logger's handler at this
    makes a test read the JSON log lines exactly as CloudWatch Logs would.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()
