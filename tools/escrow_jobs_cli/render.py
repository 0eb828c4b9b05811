"""Output of the CLI: tables and progress through ``rich`` (fitted to the terminal's width),
JSON views (``jobs_core``'s, as the operator API answers), redaction of email addresses.

    >>> print(table(["TYPE", "READY"], [["audit_log_created", 3]], right={1}, width=40))
     TYPE                READY
     audit_log_created       3
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from jobs_core import QueueStats, iso, job_view, redact_data, redact_emails
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

DEFAULT_WIDTH = 120  # when the output is not a terminal (a pipe, a file, a test)

redact_text = redact_emails
redact = redact_data
__all__ = ["iso", "job_view", "redact", "redact_text"]


def width_of(stream: TextIO, environ: Mapping[str, str] | None = None) -> int:
    """The terminal's width when ``stream`` is one, else ``COLUMNS`` (of ``environ``, the
    invocation's environment), else ``DEFAULT_WIDTH``."""
    if _isatty(stream):
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    columns = (environ if environ is not None else os.environ).get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else DEFAULT_WIDTH


def job_text(view: Mapping[str, Any], *, width: int = DEFAULT_WIDTH) -> str:
    """``job_view`` as aligned ``key: value`` lines, its attempts as a table, the payload
    as indented JSON."""
    lines = []
    for key, value in view.items():
        if key in ("payload", "history", "piiShown"):
            continue
        lines.append(f"{key + ':':<15}{'-' if value is None else value}")
    history = view.get("history") or []
    if history:
        rows = [
            [e["attempt"] or "", e["kind"], e["startedAt"] or "-", e["at"], e["processor"] or "-",
             e["error"] or "", e["nextRunAt"] or "-", e["actor"] or ""]
            for e in history
        ]  # fmt: skip
        lines.append("attempts and actions:")
        lines.append(
            table(
                ["#", "WHAT", "STARTED", "ENDED", "PROCESSOR", "ERROR", "NEXT DUE", "BY"],
                rows,
                right={0},
                width=width,
                wrap={5},
            )
        )
    payload = json.dumps(view["payload"], indent=2, sort_keys=True)
    lines.append("payload:")
    lines += ["  " + line for line in payload.splitlines()]
    return "\n".join(lines)


def stats_view(stats: QueueStats, *, namespace: str, backend: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "backend": backend,
        "byType": {
            t.value: {
                "ready": s.ready,
                "scheduled": s.scheduled,
                "running": s.running,
                "oldestReadyAgeS": round(s.oldest_ready_age_s, 3),
                "paused": s.paused,
            }
            for t, s in sorted(stats.by_type.items())
        },
        "ready": stats.ready,
        "scheduled": stats.scheduled,
        "running": stats.running,
        "deadLetter": stats.dead_letter,
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
        "truncated": stats.truncated,
    }


def stats_text(view: Mapping[str, Any], *, width: int = DEFAULT_WIDTH) -> str:
    rows: list[list[Any]] = [
        [name, s["ready"], s["scheduled"], s["running"], f"{s['oldestReadyAgeS']:.1f}s",
         "paused" if s["paused"] else ""]
        for name, s in view["byType"].items()
    ]  # fmt: skip
    rows.append(["total", view["ready"], view["scheduled"], view["running"], "", ""])
    headers = ["TYPE", "READY", "SCHEDULED", "RUNNING", "OLDEST", ""]
    body = table(headers, rows, right={1, 2, 3, 4}, rule_before=-1, width=width, wrap={0})
    note = "  (counts are lower bounds: the scan was truncated)" if view["truncated"] else ""
    return (
        f"queue {view['namespace']} on {view['backend']}\n\n{body}\n\n"
        f"dead letter: {view['deadLetter']}   "
        f"oldest ready job: {view['oldestReadyAgeS']:.1f}s{note}"
    )


def dead_rows(views: Iterable[Mapping[str, Any]], *, width: int = DEFAULT_WIDTH) -> str:
    rows = [
        [
            v["id"],
            v["type"],
            f"{v['attempts']}/{v['maxAttempts']}",
            v["finishedAt"] or "-",
            shorten(v["lastError"] or "-", 300),
        ]
        for v in views
    ]
    headers = ["ID", "TYPE", "ATTEMPTS", "DEAD SINCE", "LAST ERROR"]
    return table(headers, rows, right={2}, width=width, wrap={1, 3, 4})


def job_rows(views: Iterable[Mapping[str, Any]], *, width: int = DEFAULT_WIDTH) -> str:
    """Jobs in a list (``jobs_core.job_summary``): the error column wraps to fit."""
    rows = [
        [
            v["id"],
            v["type"],
            v["state"],
            v["transactionId"] or "-",
            f"{v['attempts']}/{v['maxAttempts']}",
            (v["finishedAt"] if v["state"] == "dead" else v["nextRunAt"]) or "-",
            shorten(v["lastError"] or "", 300),
        ]
        for v in views
    ]
    headers = ["ID", "TYPE", "STATE", "ESCROW", "ATTEMPTS", "DUE / DIED", "LAST ERROR"]
    return table(headers, rows, right={4}, width=width, wrap={1, 3, 5, 6})


def shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: set[int] | frozenset[int] = frozenset(),
    rule_before: int | None = None,
    width: int = DEFAULT_WIDTH,
    wrap: set[int] | frozenset[int] = frozenset(),
) -> str:
    """A ``rich`` table fitted to ``width``: ``right`` = indexes of right-aligned columns,
    ``wrap`` = columns that may wrap (the others are kept whole, or cut with an ellipsis);
    ``rule_before`` (an index into rows, negative allowed) draws a rule above that row.
    Cells are plain text (never rich markup: an error may hold brackets)."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for i, header in enumerate(headers):
        grid.add_column(
            header,
            justify="right" if i in right else "left",
            overflow="fold" if i in wrap else "ellipsis",
            no_wrap=i not in wrap,
        )
    rule_at = None if rule_before is None else rule_before % max(len(rows), 1)
    for index, row in enumerate(rows):
        grid.add_row(*(Text(str(c)) for c in row), end_section=index + 1 == rule_at)
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


class ProgressBar:
    """A ``rich`` progress bar on ``stream`` (``500/1000 replayed``), drawn only when
    ``stream`` is a terminal unless ``enabled`` says otherwise; ``finish`` ends it."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        label: str = "",
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.enabled = _isatty(stream) if enabled is None else enabled
        console = Console(file=stream, force_terminal=self.enabled, width=width_of(stream))
        self._progress = Progress(
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn(label),
            console=console,
            disable=not self.enabled,
            get_time=clock,
            auto_refresh=False,
        )
        self._task = self._progress.add_task(label, total=self.total)
        self._started = False

    def advance(self, count: int) -> None:
        self.done += count
        self._progress.update(self._task, completed=self.done, total=max(self.total, self.done))
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        if not self._started:
            self._progress.start()
            self._started = True
        self._progress.refresh()

    def finish(self) -> None:
        if self.enabled:
            self.draw()
            self._progress.stop()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
