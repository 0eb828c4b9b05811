"""After a commit: enqueue the change's outbox entries, delete them, wake the processor.

Never raises for Redis or table trouble: the money has moved and the state is
committed, so the entries simply wait for the sweep (``outbox.sweep_outbox``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from jobs_core import BackendError, EnqueueResult, InvalidJobError, JobQueue, logger

from .outbox import OutboxEntry, OutboxStore

Kick = Callable[[EnqueueResult], object]


def after_commit(
    entries: Sequence[OutboxEntry], store: OutboxStore, queue: JobQueue, kick: Kick | None
) -> None:
    """Enqueue every entry in one round trip and delete them; kick the processor when
    none is draining (``processor_active`` False) and ``kick`` is given."""
    result = enqueue(entries, store, queue)
    if result is not None and not result.processor_active and kick is not None:
        try:
            kick(result)
        except Exception:  # best effort: the processor's schedule drains the queue anyway
            logger.warning("could not kick the processor", exc_info=True)


def enqueue(
    entries: Sequence[OutboxEntry], store: OutboxStore, queue: JobQueue
) -> EnqueueResult | None:
    """Enqueue then delete the entries; None when nothing was enqueued."""
    if not entries:
        return None
    try:
        now = queue.now_ms()
        result = queue.enqueue_batch([e.spec(now) for e in entries], read_marker=True)
    except BackendError as exc:
        logger.warning(
            "queue unreachable; the outbox keeps the jobs for the sweep",
            extra={"backend": exc.backend, "jobs": len(entries), "error": str(exc)},
        )
        return None
    except InvalidJobError:
        logger.exception("an outbox entry was refused by the queue; it stays in the outbox")
        return None
    _delete_quietly(store, entries)
    return result


def _delete_quietly(store: OutboxStore, entries: Sequence[OutboxEntry]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.delete_outbox(entries)
    except (BotoCoreError, ClientError):
        # The sweep will enqueue them again; their dedupe keys make that a no-op.
        logger.warning("could not delete enqueued outbox entries", exc_info=True)


def processor_kicker(environ: Mapping[str, str]) -> Kick | None:
    """``jobs_core.kick``'s kicker (invokes the processor when none is draining), or None
    when kicking is off (outside Lambda unless ``JOBS_KICK_ENABLED``)."""
    from jobs_core import Kicker

    kicker = Kicker.from_environ(environ)
    return kicker.kick if kicker.active else None
