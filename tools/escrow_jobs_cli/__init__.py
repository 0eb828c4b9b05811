"""escrow-jobs operator tools: the ``escrow-jobs`` CLI and the local stack (``make dev``).

- ``escrow_jobs_cli.main``: the CLI (``escrow-jobs stats``, ``dlq ...``, ``enqueue``, ``drain``),
  against whatever Redis the environment names (``jobs_core.Settings.from_env``).
- ``escrow_jobs_cli.local_stack``: the whole system in one process on embedded defaults
  (``python -m escrow_jobs_cli.local_stack``).
- ``escrow_jobs_cli.http_gateway``: a local stand-in for API Gateway's HTTP API.
- ``escrow_jobs_cli.scheduler``: the EventBridge schedules (processor, monitor).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
