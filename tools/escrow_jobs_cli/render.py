"""Output of the CLI: plain tables, JSON views, redaction of email addresses, a progress bar.

No terminal library: a table is padded columns, the progress bar is one line redrawn
with ``\\r`` (only when its stream is a terminal, unless forced).

    >>> print(table(["TYPE", "READY"], [["audit_log_created", 3]], right={1}))
    TYPE               READY
    audit_log_created      3
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from jobs_core import Job, QueueStats

_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def redact_text(text: str) -> str:
    """Every email address in ``text`` as ``u***@example.com``.

    >>> redact_text("sent to bob@example.com")
    'sent to b***@example.com'
    """
    return _EMAIL.sub(lambda m: f"{m.group('local')[0]}***@{m.group('domain')}", text)


def redact(value: Any) -> Any:
    """``value`` (JSON data) with every email address inside its strings redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_view(job: Job, *, show_pii: bool = False) -> dict[str, Any]:
    """A job as the CLI prints it in JSON (camelCase, like the operator endpoint)."""
    scrub: Callable[[Any], Any] = (lambda v: v) if show_pii else redact
    return {
        "id": job.id,
        "type": job.type.value,
        "state": job.state.value,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "createdAt": iso(job.created_at),
        "nextRunAt": iso(job.next_run_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
        "lastError": scrub(job.last_error),
        "dedupeKey": job.dedupe_key,
        "correlationId": job.correlation_id,
        "payload": scrub(job.payload),
    }


def job_text(view: Mapping[str, Any]) -> str:
    """``job_view`` as aligned ``key: value`` lines, the payload as indented JSON."""
    lines = []
    for key, value in view.items():
        if key == "payload":
            continue
        lines.append(f"{key + ':':<15}{'-' if value is None else value}")
    payload = json.dumps(view["payload"], indent=2, sort_keys=True)
    lines.append("payload:")
    lines += ["  " + line for line in payload.splitlines()]
    return "\n".join(lines)


def stats_view(stats: QueueStats, *, namespace: str, backend: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "backend": backend,
        "byType": {
            t.value: {"ready": s.ready, "scheduled": s.scheduled, "running": s.running}
            for t, s in sorted(stats.by_type.items())
        },
        "ready": stats.ready,
        "scheduled": stats.scheduled,
        "running": stats.running,
        "deadLetter": stats.dead_letter,
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
        "truncated": stats.truncated,
    }


def stats_text(view: Mapping[str, Any]) -> str:
    rows: list[list[Any]] = [
        [name, s["ready"], s["scheduled"], s["running"]] for name, s in view["byType"].items()
    ]
    rows.append(["total", view["ready"], view["scheduled"], view["running"]])
    body = table(["TYPE", "READY", "SCHEDULED", "RUNNING"], rows, right={1, 2, 3}, rule_before=-1)
    note = "  (counts are lower bounds: the scan was truncated)" if view["truncated"] else ""
    return (
        f"queue {view['namespace']} on {view['backend']}\n\n{body}\n\n"
        f"dead letter: {view['deadLetter']}   "
        f"oldest ready job: {view['oldestReadyAgeS']:.1f}s{note}"
    )


def dead_rows(views: Iterable[Mapping[str, Any]], *, error_width: int = 60) -> str:
    rows = [
        [
            v["id"],
            v["type"],
            f"{v['attempts']}/{v['maxAttempts']}",
            v["finishedAt"] or "-",
            shorten(v["lastError"] or "-", error_width),
        ]
        for v in views
    ]
    return table(["ID", "TYPE", "ATTEMPTS", "DEAD SINCE", "LAST ERROR"], rows, right={2})


def shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: set[int] | frozenset[int] = frozenset(),
    rule_before: int | None = None,
) -> str:
    """Columns padded to their widest cell; ``right`` = indexes of right-aligned columns.
    ``rule_before`` (an index into rows, negative allowed) draws a rule above that row."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    out = [line(cells[0])]
    rule_at = None if rule_before is None else rule_before % max(len(rows), 1)
    for index, row in enumerate(cells[1:]):
        if index == rule_at:
            out.append("  ".join("-" * w for w in widths))
        out.append(line(row))
    return "\n".join(out)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


class ProgressBar:
    """``[#####.....] 50%  500/1000 replayed`` redrawn in place on a terminal.

    ``enabled=None`` draws only when ``stream`` is a terminal. ``finish`` ends the line.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        label: str = "",
        width: int = 30,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.stream = stream
        self.label = label
        self.width = width
        self.enabled = _isatty(stream) if enabled is None else enabled
        self._clock = clock
        self._started = clock()

    def advance(self, count: int) -> None:
        self.done += count
        self.draw()

    def render(self) -> str:
        total = max(self.total, self.done, 1)
        fraction = min(self.done / total, 1.0)
        filled = round(fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = self._clock() - self._started
        return (
            f"[{bar}] {fraction * 100:3.0f}%  {self.done}/{max(self.total, self.done)}"
            f" {self.label}  {elapsed:.1f}s"
        ).rstrip()

    def draw(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.render())
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.render() + "\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
