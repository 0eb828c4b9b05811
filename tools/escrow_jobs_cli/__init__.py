"""escrow-jobs operator tools: the ``escrow-jobs`` CLI that operators install.

- ``escrow_jobs_cli.main``: the CLI (``escrow-jobs stats``, ``dlq ...``, ``enqueue``, ``drain``),
  against whatever Redis the environment names (``jobs_core.Settings.from_env``);
- ``escrow_jobs_cli.parser``: its command line; ``escrow_jobs_cli.cli``: one invocation
  (exit codes, errors, the queue); ``escrow_jobs_cli.commands``: one module per command;
- ``escrow_jobs_cli.render``: its output (tables, JSON views, redaction, a progress bar).

The local stack (``make dev``) is development only: the ``local_stack`` package.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
