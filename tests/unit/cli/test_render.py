from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from escrow_jobs_cli import render
from jobs_core import Job, JobState, JobType


def _job(**overrides: object) -> Job:
    fields: dict[str, object] = {
        "id": "01JOB",
        "type": JobType.SEND_DISPUTE_EMAIL,
        "payload": {
            "transaction_id": "esc-1",
            "buyer_email": "buyer.one@example.com",
            "seller_email": "s@shop.example.co.uk",
            "amount": 500,
            "nested": [{"cc": "cc@example.org"}],
        },
        "state": JobState.DEAD,
        "attempts": 3,
        "max_attempts": 3,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "next_run_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "last_error": "SES refused buyer.one@example.com",
    }
    fields.update(overrides)
    return Job.model_validate(fields)


def test_redact_keeps_first_letter_and_domain_everywhere_in_json() -> None:
    data = {"a": "mail x@y.io and z.z@w.example", "b": ["q@r.st", 3, None], "c": {"d": "no"}}
    assert render.redact(data) == {
        "a": "mail x***@y.io and z***@w.example",
        "b": ["q***@r.st", 3, None],
        "c": {"d": "no"},
    }


def test_job_view_redacts_payload_and_error_unless_asked() -> None:
    view = render.job_view(_job())
    assert view["payload"]["buyer_email"] == "b***@example.com"
    assert view["payload"]["seller_email"] == "s***@shop.example.co.uk"
    assert view["payload"]["nested"] == [{"cc": "c***@example.org"}]
    assert view["lastError"] == "SES refused b***@example.com"
    assert "@example.com" not in render.job_text(view).replace("b***@example.com", "")

    whole = render.job_view(_job(), show_pii=True)
    assert whole["payload"]["buyer_email"] == "buyer.one@example.com"
    assert whole["lastError"] == "SES refused buyer.one@example.com"


def test_job_view_fields_and_timestamps() -> None:
    view = render.job_view(_job(dedupe_key="k", correlation_id="c"))
    assert view["id"] == "01JOB"
    assert view["type"] == "send_dispute_email"
    assert view["state"] == "dead"
    assert (view["attempts"], view["maxAttempts"]) == (3, 3)
    assert view["createdAt"] == "2026-01-02T03:04:05.000Z"
    assert view["finishedAt"] is None
    assert (view["dedupeKey"], view["correlationId"]) == ("k", "c")


def test_table_right_aligns_numbers_and_fits_the_width() -> None:
    text = render.table(["NAME", "N"], [["a", 1], ["long-name", 1234]], right={1})
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "N"]
    assert lines[2].endswith("   1") and lines[3].endswith("1234")
    wide = [["x" * 30, "an error that " * 10]]
    narrow = render.table(["ID", "ERROR"], wide, width=50, wrap={1})
    assert max(len(line) for line in narrow.splitlines()) <= 50
    assert "x" * 30 in narrow  # kept whole; the error wraps


def test_table_cells_are_text_not_markup() -> None:
    assert "[upstash] refused" in render.table(["E"], [["[upstash] refused"]])


def test_shorten_flattens_whitespace() -> None:
    assert render.shorten("a\n  b", 10) == "a b"
    assert render.shorten("x" * 20, 10) == "x" * 9 + "…"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal_by_default() -> None:
    quiet = io.StringIO()
    bar = render.ProgressBar(10, quiet, label="replayed")
    bar.advance(5)
    bar.finish()
    assert quiet.getvalue() == ""

    tty = _Tty()
    bar = render.ProgressBar(10, tty, label="replayed", clock=lambda: 0.0)
    bar.advance(5)
    bar.advance(5)
    bar.finish()
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.getvalue())
    assert "5/10" in drawn and "10/10 replayed" in drawn and "100%" in drawn
    assert drawn.endswith("\n")


def test_progress_bar_forced_and_overshooting_total() -> None:
    out = io.StringIO()
    bar = render.ProgressBar(2, out, enabled=True, clock=lambda: 0.0)
    bar.advance(3)
    bar.finish()
    assert "3/3" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
