"""The operator console in a real browser (headless Chromium, Debian's ``chromium``,
driven by Playwright) on a running local stack (``python -m local_stack``).

1. A partner webhook fails twice (503, then 400): the console shows the dead-lettered job
   with both attempts and their errors; the operator replays it with the button, and the
   console shows it succeeded (the partner received it).
2. The operator pauses a type; a job of that type waits (counted, not run) while the
   processor keeps polling; resumed, it runs.

Screenshots are saved under ``.artifacts/`` (git-ignored) as test artefacts.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_core import JobQueue, JobState, Settings
from playwright import sync_api

from tests.support.webhook_receiver import WebhookReceiver

from .conftest import REPO_ROOT, Stack, eventually

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-local-stack")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / ".artifacts"
WAIT_MS = 30_000  # a bound on the console's live refresh (every 3 s) catching up


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs Debian's package")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(stack.api) else outside.append(r.url))
    page.goto(stack.api + "/")
    page.fill("#login-actor", "e2e operator")
    page.fill("#login-token", stack.info["processorToken"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#overview tbody tr[data-type]", timeout=WAIT_MS)
    assert stack.info["processorToken"] not in page.url
    yield page
    assert outside == []  # the console fetched nothing from outside its origin
    context.close()


def _queue(stack: Stack) -> JobQueue:
    env = {"REDIS_URL": stack.info["redisUrl"], "JOBS_NAMESPACE": stack.info["namespace"]}
    return JobQueue.from_settings(Settings.from_env(env))


def _confirm(page: Any) -> None:
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_dead_webhook_is_seen_with_its_attempts_and_replayed(stack: Stack, page: Any) -> None:
    expect = sync_api.expect
    escrow = f"esc_console_{uuid.uuid4().hex[:8]}"
    with WebhookReceiver() as partner:
        ref = f"console-partner-{uuid.uuid4().hex[:8]}"
        stack.aws("secretsmanager").create_secret(
            Name=stack.info["webhookSecretPrefix"] + ref, SecretString=partner.secret
        )
        partner.respond_next(1, 503, {"Retry-After": "1"}, b"partner is restarting")
        partner.respond_next(1, 400, None, b"unknown escrow")
        job_id = _queue(stack).enqueue_job(
            "webhook_escrow_status_changed",
            {"transactionId": escrow, "webhookUrl": partner.url, "webhookSecretRef": ref,
             "status": "released", "previousStatus": "funded", "amount": 10000},
        )  # fmt: skip
        queue = _queue(stack)
        eventually(
            lambda: (j := queue.get_job_status(job_id)) is not None and j.state is JobState.DEAD,
            "the webhook job to be dead-lettered",
            stack,
        )

        page.select_option("#f-state", "dead")
        row = page.locator(f"#jobs tbody tr[data-id='{job_id}']")
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text("HTTP 400")
        row.click()
        history = page.locator("#d-history tbody tr")
        expect(history).to_have_count(2, timeout=WAIT_MS)
        expect(history.nth(0)).to_contain_text("retried")
        expect(history.nth(0)).to_contain_text("HTTP 503")
        expect(history.nth(1)).to_contain_text("dead")
        expect(history.nth(1)).to_contain_text("HTTP 400")
        expect(page.locator("#d-fields")).to_contain_text(escrow)
        _shot(page, "console-dead-job.png")

        page.get_by_role("button", name="Replay", exact=True).click()
        _confirm(page)
        expect(page.locator("#d-fields")).to_contain_text("succeeded", timeout=WAIT_MS)
        expect(history).to_have_count(4)  # retried, dead, replayed, succeeded
        expect(history.nth(2)).to_contain_text("e2e operator")
        assert len(partner.accepted) == 1
    expect(page.locator("#audit tbody")).to_contain_text("replay")
    # The chart: the last hour from the drains the stack saw (2 failed attempts, 1 success).
    counts = re.compile(r"[1-9]\d* succeeded, ([2-9]|\d\d+) failed")
    expect(page.locator("#chart-source")).to_contain_text(counts, timeout=WAIT_MS)
    assert page.locator("#chart rect.ok").count() >= 1
    assert page.locator("#chart rect.bad").count() >= 1
    _shot(page, "console.png")


def test_a_paused_type_waits_and_runs_once_resumed(stack: Stack, page: Any) -> None:
    expect = sync_api.expect
    kind = "audit_log_created"
    type_row = page.locator(f"#overview tbody tr[data-type='{kind}']")
    type_row.get_by_role("button", name="Pause").click()
    _confirm(page)
    expect(type_row).to_contain_text("paused", timeout=WAIT_MS)

    queue = _queue(stack)
    job_id = queue.enqueue_job(
        kind, {"transactionId": f"esc_pause_{uuid.uuid4().hex[:8]}", "action": "released",
               "actor": "buyer-1"},
    )  # fmt: skip
    expect(type_row.locator("td").nth(1)).to_have_text("1", timeout=WAIT_MS)  # ready, counted
    page.fill("#search", job_id)
    page.click("#search-form button")
    expect(page.locator("#d-id")).to_have_text(job_id, timeout=WAIT_MS)
    page.wait_for_timeout(2000)  # four processor ticks: a paused type is not claimed
    expect(page.locator("#d-fields")).to_contain_text("queued")
    job = queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    _shot(page, "console-paused.png")

    type_row.get_by_role("button", name="Resume").click()
    _confirm(page)
    expect(page.locator("#d-fields")).to_contain_text("succeeded", timeout=WAIT_MS)
    expect(type_row).to_contain_text("active")
    expect(type_row.locator("td").nth(1)).to_have_text("0")
