"""``escrow-jobs queue pause TYPE`` / ``queue resume TYPE``: stop and start claiming a type.

A paused type's jobs wait (still counted by ``stats``); the pause costs the idle poll
nothing. Both are audited with who and when (``ESCROW_JOBS_ACTOR``, else user@host).
"""

from __future__ import annotations

from ..cli import EXIT_OK, Cli, parse_job_type


def cmd_queue_pause(cli: Cli) -> int:
    return _pause(cli, pause=True)


def cmd_queue_resume(cli: Cli) -> int:
    return _pause(cli, pause=False)


def _pause(cli: Cli, *, pause: bool) -> int:
    job_type = parse_job_type(cli.args.type)
    queue = cli.queue()
    if pause:
        changed = queue.pause_type(job_type, actor=cli.actor())
        text = f"paused {job_type.value}" if changed else f"{job_type.value} was paused already"
    else:
        changed = queue.resume_type(job_type, actor=cli.actor())
        text = f"resumed {job_type.value}" if changed else f"{job_type.value} was not paused"
    cli.emit({"type": job_type.value, "paused": pause, "changed": changed}, text)
    return EXIT_OK
