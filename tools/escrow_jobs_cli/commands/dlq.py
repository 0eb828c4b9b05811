"""``escrow-jobs dlq list|show|replay|purge``: the dead-letter queue."""

from __future__ import annotations

from jobs_core import JobState

from .. import render
from ..cli import EXIT_BAD_INPUT, EXIT_DECLINED, EXIT_NOT_FOUND, EXIT_OK, Cli, CliError

REPLAY_BATCH = 100
PURGE_BATCH = 1000
MAX_BATCH = 1000  # the engine's replay/purge scripts take at most this many ids per call


def cmd_dlq_list(cli: Cli) -> int:
    queue = cli.queue()
    jobs = queue.get_dead_letter_jobs(cli.args.limit, offset=cli.args.offset)
    total = queue.get_queue_stats().dead_letter
    views = [render.job_view(j, show_pii=cli.show_pii) for j in jobs]
    if not views:
        text = "the dead-letter queue is empty" if total == 0 else f"no entries past {total}"
    else:
        shown = f"{cli.args.offset + 1}-{cli.args.offset + len(views)}"
        rows = render.dead_rows(views, width=cli.width)
        text = f"{rows}\n\n{shown} of {total} dead-lettered jobs (newest first)"
    cli.emit({"total": total, "offset": cli.args.offset, "jobs": views}, text)
    return EXIT_OK


def cmd_dlq_show(cli: Cli) -> int:
    job = cli.queue().get_job_status(cli.args.id)
    if job is None or job.state is not JobState.DEAD:
        state = "not found" if job is None else f"its state is {job.state.value}"
        raise CliError(
            EXIT_NOT_FOUND,
            "not_found",
            f"job {cli.args.id} is not in the dead-letter queue ({state})",
        )
    view = render.job_view(job, show_pii=cli.show_pii)
    cli.emit(view, render.job_text(view, width=cli.width))
    return EXIT_OK


def _selection(cli: Cli, verb: str, *, all_by_default: bool) -> list[str] | None:
    """The ids named on the command line, or None for "all"; refuses both or neither."""
    ids: list[str] = list(dict.fromkeys(cli.args.ids))  # unique, in order
    if ids and cli.args.all:
        raise CliError(EXIT_BAD_INPUT, "usage", f"give job ids or --all to {verb}, not both")
    if not ids and not cli.args.all and not all_by_default:
        raise CliError(EXIT_BAD_INPUT, "usage", f"give the job ids to {verb}, or --all")
    return ids or None


def cmd_dlq_replay(cli: Cli) -> int:
    queue = cli.queue()
    ids = _selection(cli, "replay", all_by_default=False)
    batch = cli.args.batch_size
    replayed: list[str] = []
    # --all: the size now bounds the work, so jobs that die again meanwhile are not
    # replayed round and round by this command.
    total = len(ids) if ids is not None else queue.get_queue_stats().dead_letter
    progress = render.ProgressBar(
        total,
        cli.err,
        label="replayed",
        enabled=False if cli.json else cli.args.progress,
    )
    progress.draw()
    if ids is not None:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            done = queue.replay_dead_letter(chunk, limit=len(chunk), actor=cli.actor())
            replayed += done
            progress.advance(len(chunk))
    else:
        while len(replayed) < total:
            left = min(batch, total - len(replayed))
            done = queue.replay_dead_letter(None, limit=left, actor=cli.actor())
            if not done:
                break
            replayed += done
            progress.advance(len(done))
    progress.finish()
    missing = [] if ids is None else sorted(set(ids) - set(replayed))
    text = f"replayed {len(replayed)} job(s) from the dead-letter queue"
    if missing:
        text += f"; not in the dead-letter queue: {', '.join(missing)}"
    cli.emit({"replayed": len(replayed), "ids": replayed, "notFound": missing}, text)
    return EXIT_NOT_FOUND if missing and not replayed else EXIT_OK


def cmd_dlq_purge(cli: Cli) -> int:
    queue = cli.queue()
    ids = _selection(cli, "purge", all_by_default=True)
    count = len(ids) if ids is not None else queue.get_queue_stats().dead_letter
    if count == 0:
        cli.emit({"purged": 0}, "the dead-letter queue is empty: nothing to purge")
        return EXIT_OK
    what = f"{count} dead-lettered job(s)" if ids is None else f"{count} named job(s)"
    if not cli.args.yes and not cli.confirm(f"Delete {what} for good? [y/N] ", "purge"):
        raise CliError(EXIT_DECLINED, "declined", "nothing purged")
    purged = 0
    if ids is not None:
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            purged += queue.purge_dead_letter(chunk, limit=len(chunk), actor=cli.actor())
    else:
        while purged < count:
            left = min(PURGE_BATCH, count - purged)
            done = queue.purge_dead_letter(None, limit=left, actor=cli.actor())
            if done == 0:
                break
            purged += done
    # As replay: named ids none of which is dead-lettered are "not found" (exit 4).
    not_found = 0 if ids is None else len(ids) - purged
    text = f"purged {purged} job(s) from the dead-letter queue"
    if not_found:
        text += f"; {not_found} of the named job(s) not in the dead-letter queue"
    data = {"purged": purged} if ids is None else {"purged": purged, "notFound": not_found}
    cli.emit(data, text)
    return EXIT_NOT_FOUND if ids is not None and purged == 0 else EXIT_OK
