"""The local stack's settings: its options, and the names it gives what it creates.

Options (or environment variables): ``--port`` (``ESCROW_LOCAL_PORT``, default 3000),
``--state-dir`` (``ESCROW_LOCAL_STATE_DIR``, default ``.local``), ``--process-every``
(``ESCROW_LOCAL_PROCESS_EVERY_S``, default 2), ``--monitor-every``
(``ESCROW_LOCAL_MONITOR_EVERY_S``, default: the template's rate), ``--log-level``
(``POWERTOOLS_LOG_LEVEL`` of the handlers, default WARNING), ``--info-file``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "escrow-jobs-local"
STRIPE_API_KEY = "sk_test_local"  # the local Stripe server's key; not a real one
DEMO_PARTNER_REF = "demo-partner"
DEV_TOKEN_TTL_S = 12 * 3600

# Variables a developer may set to change the local stack's defaults (the rest of the
# environment the handlers read is the stack's own: endpoints, table names, secrets).
TUNABLE = frozenset(
    {
        "EMAIL_PROVIDER",
        "EMAIL_FROM",
        "MAILBOX_DIR",
        "RESEND_API_KEY",
        "RESEND_API_KEY_REF",
        "RESEND_API_URL",
        "POWERTOOLS_LOG_LEVEL",
        "JOBS_NAMESPACE",
        "JOBS_KICK_ENABLED",
        "JOB_PROCESSOR_IDLE_EXIT_S",
        "JOB_PROCESSOR_MAX_FANOUT",
    }
)
# Names the template sets per function that make no sense merged into one process.
NOT_SHARED = frozenset({"POWERTOOLS_SERVICE_NAME", "UPSTASH_TOKEN_PARAM", "UPSTASH_REDIS_REST_URL"})
# Never inherited: real AWS credentials must not reach the local stack's clients.
AWS_DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".local")
    info_file: Path | None = None  # default: state_dir / "stack.json"
    process_every_s: float = 2.0
    monitor_every_s: float | None = None  # default: the template's rate
    log_level: str = "WARNING"
    template_path: Path = field(default_factory=lambda: REPO_ROOT / "template.yaml")

    @property
    def info_path(self) -> Path:
        return self.info_file or self.state_dir / "stack.json"


def parse_args(argv: list[str] | None, environ: Mapping[str, str]) -> StackConfig:
    def number(name: str, default: float) -> float:
        raw = environ.get(name, "").strip()
        return float(raw) if raw else default

    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Run the escrow-jobs system locally (Ctrl-C stops it).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(number("ESCROW_LOCAL_PORT", 3000)))
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(environ.get("ESCROW_LOCAL_STATE_DIR") or REPO_ROOT / ".local"),
        help="mailbox, effect ledger and stack.json (default .local)",
    )
    parser.add_argument("--info-file", type=Path, default=None)
    parser.add_argument(
        "--process-every",
        type=float,
        default=number("ESCROW_LOCAL_PROCESS_EVERY_S", 2.0),
        metavar="S",
        help="seconds between processor runs (default 2)",
    )
    parser.add_argument(
        "--monitor-every",
        type=float,
        default=number("ESCROW_LOCAL_MONITOR_EVERY_S", 0) or None,
        metavar="S",
        help="seconds between monitor runs (default: the template's rate)",
    )
    parser.add_argument(
        "--log-level",
        default=environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        help="the handlers' log level (default WARNING)",
    )
    args = parser.parse_args(argv)
    if args.process_every <= 0 or (args.monitor_every is not None and args.monitor_every <= 0):
        parser.error("intervals must be positive")
    return StackConfig(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        info_file=args.info_file,
        process_every_s=args.process_every,
        monitor_every_s=args.monitor_every,
        log_level=args.log_level.upper(),
    )
