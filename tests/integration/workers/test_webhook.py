"""Partner webhooks against a real local receiver that verifies each Standard Webhooks signature."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from jobs_core import Job, JobType, PermanentJobError, RetryableJobError
from jobs_core.workers import WorkerDeps, build_handlers, webhook_message_id
from jobs_core.workers.effects import MemoryEffectLedger
from jobs_core.workers.webhook import UnsafeDestinationError, WebhookSender

from tests.integration.workers.helpers import PARTNER_SECRET_REF
from tests.support.webhook_receiver import WebhookReceiver, make_tls_contexts

BODY = b'{"type":"escrow.status_changed","timestamp":"2026-01-01T00:00:00Z","data":{}}'


def _job(new_job: Callable[..., Job], url: str, **extra: Any) -> Job:
    return new_job(
        JobType.WEBHOOK_ESCROW_STATUS_CHANGED,
        {
            "transactionId": "esc-3", "status": "released", "previousStatus": "funded",
            "amount": 500, "currency": "JPY", "webhookUrl": url,
            "webhookSecretRef": PARTNER_SECRET_REF, **extra,
        },
    )  # fmt: skip


def _deps(receiver: WebhookReceiver, **sender: Any) -> WorkerDeps:
    deps = WorkerDeps(
        webhook_allow_local=True,
        environ={"PARTNER_ACME": receiver.secret},
        effect_ledger=MemoryEffectLedger(),
    )
    if sender:
        deps.webhook_sender = WebhookSender(allow_local=True, **sender)
    return deps


def _run(deps: WorkerDeps, job: Job) -> None:
    build_handlers(deps)[JobType.WEBHOOK_ESCROW_STATUS_CHANGED](job)


def test_event_is_signed_and_shaped_per_standard_webhooks(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    job = _job(new_job, receiver.url)
    _run(_deps(receiver), job)

    [delivery] = receiver.deliveries
    assert delivery.verified, delivery.error
    assert delivery.webhook_id == webhook_message_id(job) == f"msg_{job.id}"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.payload == {
        "type": "escrow.status_changed",
        "timestamp": job.created_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "escrow_id": "esc-3",
            "status": "released",
            "previous_status": "funded",
            "amount": 500,
            "currency": "JPY",
        },
    }


def test_retries_keep_the_webhook_id_and_the_partner_applies_it_once(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    job = _job(new_job, receiver.url)
    deps = _deps(receiver)
    receiver.respond_next(1, 500)
    with pytest.raises(RetryableJobError, match="HTTP 500"):
        _run(deps, job)
    _run(deps, job)
    _run(deps, job)  # a redelivery after success: the ledger stops it

    assert [d.status for d in receiver.deliveries] == [500, 200]
    assert {d.webhook_id for d in receiver.deliveries} == {f"msg_{job.id}"}
    assert all(d.verified for d in receiver.deliveries)
    assert len(receiver.accepted) == 1


def test_crash_window_resend_carries_the_same_id_and_is_deduped(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    """Delivered, then the process died before recording it: the partner dedupes the resend."""
    job = _job(new_job, receiver.url)
    deps = _deps(receiver)
    _run(deps, job)
    deps.effect_ledger = MemoryEffectLedger()  # the record never made it
    _run(deps, job)

    first, second = receiver.deliveries
    assert first.webhook_id == second.webhook_id
    assert second.duplicate
    assert len(receiver.accepted) == 1


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [(429, {"Retry-After": "7"}, 7.0), (503, {"Retry-After": "120"}, 120.0), (408, {}, None)],
)
def test_retryable_statuses_honour_retry_after(
    receiver: WebhookReceiver,
    new_job: Callable[..., Job],
    status: int,
    headers: dict[str, str],
    delay: float | None,
) -> None:
    receiver.respond_next(1, status, headers)
    with pytest.raises(RetryableJobError, match=f"HTTP {status}") as caught:
        _run(_deps(receiver), _job(new_job, receiver.url))
    assert caught.value.delay_s == delay


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_other_4xx_are_permanent(
    receiver: WebhookReceiver, new_job: Callable[..., Job], status: int
) -> None:
    receiver.respond_next(1, status, body=b'{"error":"nope"}')
    with pytest.raises(PermanentJobError, match=f"HTTP {status}: .*nope"):
        _run(_deps(receiver), _job(new_job, receiver.url))


def test_redirects_are_not_followed(receiver: WebhookReceiver, new_job: Callable[..., Job]) -> None:
    receiver.respond_next(1, 301, {"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(PermanentJobError, match="redirects are not followed"):
        _run(_deps(receiver), _job(new_job, receiver.url))
    assert len(receiver.deliveries) == 1


def test_a_bad_signature_is_refused_by_the_partner(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    other = WebhookReceiver()  # never started: only its secret is used
    deps = WorkerDeps(
        webhook_allow_local=True,
        environ={"PARTNER_ACME": other.secret},
        effect_ledger=MemoryEffectLedger(),
    )
    with pytest.raises(PermanentJobError, match="HTTP 401"):
        _run(deps, _job(new_job, receiver.url))
    assert not receiver.deliveries[0].verified


def test_slow_answer_hits_the_read_timeout(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    receiver.sleep_next(1, 2.0)
    with pytest.raises(RetryableJobError, match="timed out"):
        _run(_deps(receiver, read_timeout_s=0.3, total_timeout_s=10), _job(new_job, receiver.url))


def test_a_dripping_server_is_cut_by_the_total_deadline(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    """Each byte arrives well within the read timeout; only the total deadline stops it."""
    receiver.drip_next(1, 0.05)
    with pytest.raises(RetryableJobError, match="total timeout exceeded"):
        _run(_deps(receiver, read_timeout_s=5, total_timeout_s=0.5), _job(new_job, receiver.url))


def test_the_response_body_is_read_up_to_the_cap(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    size = 64 * 1024 * 1024
    receiver.big_body_next(1, size)
    _run(_deps(receiver, max_response_bytes=16 * 1024), _job(new_job, receiver.url))
    assert len(receiver.accepted) == 1
    assert receiver.bytes_sent < size  # we hung up instead of reading it all


def test_connection_goes_to_the_checked_address_with_the_partners_host_header(
    receiver: WebhookReceiver,
) -> None:
    """The name is resolved once, by our resolver; httpx never resolves it again."""
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.1"]

    sender = WebhookSender(allow_local=True, resolver=resolver)
    url = f"http://partner.invalid:{receiver.port}/hooks?token=abc"
    result = sender.deliver(url=url, secret=receiver.secret, message_id="msg_1", body=BODY)

    assert result.address == "127.0.0.1"
    assert calls == [("partner.invalid", receiver.port)]
    [delivery] = receiver.accepted
    assert delivery.host == f"partner.invalid:{receiver.port}"
    assert delivery.path == "/hooks?token=abc"


def test_tls_uses_the_partners_name_for_sni_and_certificate_checks() -> None:
    server_tls, client_tls = make_tls_contexts("partner.test")
    with WebhookReceiver(tls=server_tls) as receiver:
        sender = WebhookSender(
            allow_local=True, resolver=lambda host, port: ["127.0.0.1"], verify=client_tls
        )
        sender.deliver(
            url=f"https://partner.test:{receiver.port}/hooks",
            secret=receiver.secret,
            message_id="msg_tls",
            body=BODY,
        )
        assert receiver.sni_names == ["partner.test"]
        assert receiver.accepted[0].host == f"partner.test:{receiver.port}"

        # A name the certificate does not cover fails verification (retryable: a network error).
        with pytest.raises(RetryableJobError, match="ConnectError"):
            sender.deliver(
                url=f"https://other.test:{receiver.port}/hooks",
                secret=receiver.secret,
                message_id="msg_tls_2",
                body=BODY,
            )
        assert len(receiver.deliveries) == 1


@pytest.mark.parametrize(
    ("url", "resolved", "reason"),
    [
        ("http://partner.example/hooks", ["93.184.215.14"], "scheme 'http' refused"),
        ("https://localhost/hooks", ["127.0.0.1"], "loopback"),
        ("https://127.0.0.1/hooks", [], "loopback"),
        ("https://[::1]/hooks", [], "loopback"),
        ("https://internal.partner.example/hooks", ["10.1.2.3"], "private"),
        ("https://rebind.example/hooks", ["93.184.215.14", "192.168.0.10"], "private"),
        ("https://metadata.example/latest", ["169.254.169.254"], "link-local"),
        ("https://169.254.169.254/latest/meta-data/", [], "link-local"),
        ("https://[fe80::1]/hooks", [], "link-local"),
        ("https://[fd00::1]/hooks", [], "private"),
        ("https://mapped.example/hooks", ["::ffff:10.0.0.1"], "private"),
        ("https://[::ffff:169.254.169.254]/hooks", [], "link-local"),
        ("https://mcast.example/hooks", ["224.0.0.251"], "multicast"),
        ("https://[ff02::1]/hooks", [], "multicast"),
        ("https://reserved.example/hooks", ["240.0.0.1"], "reserved"),
        ("https://0.0.0.0/hooks", [], "unspecified"),
        ("https://[::]/hooks", [], "unspecified"),
        ("https://cgnat.example/hooks", ["100.64.1.1"], "shared"),
        ("https://user:pw@partner.example/hooks", ["93.184.215.14"], "credentials"),
    ],
)
def test_ssrf_guard_refuses_each_class_before_connecting(
    url: str, resolved: list[str], reason: str
) -> None:
    """Local mode off: every refused class raises before any connection is attempted."""
    sender = WebhookSender(allow_local=False, resolver=lambda host, port: resolved)
    with pytest.raises(UnsafeDestinationError, match=reason):
        sender.deliver(url=url, secret="whsec_" + "A" * 44, message_id="msg_x", body=BODY)


def test_ssrf_refusal_is_permanent_for_the_job(new_job: Callable[..., Job]) -> None:
    deps = WorkerDeps(
        webhook_allow_local=False,
        environ={"PARTNER_ACME": "whsec_" + "A" * 44},
        effect_ledger=MemoryEffectLedger(),
        webhook_resolver=lambda host, port: ["10.0.0.7"],
    )
    job = _job(new_job, "https://partner.example/hooks")
    with pytest.raises(PermanentJobError, match=r"10\.0\.0\.7 is a private address"):
        _run(deps, job)


def test_local_mode_still_refuses_private_and_metadata_addresses() -> None:
    sender = WebhookSender(allow_local=True, resolver=lambda host, port: ["169.254.169.254"])
    with pytest.raises(UnsafeDestinationError, match="link-local"):
        sender.deliver(
            url="http://metadata/", secret="whsec_" + "A" * 44, message_id="m", body=BODY
        )


def test_unresolvable_host_is_retryable() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    sender = WebhookSender(resolver=resolver)
    with pytest.raises(RetryableJobError, match="does not resolve"):
        sender.deliver(
            url="https://gone.example/", secret="whsec_" + "A" * 44, message_id="m", body=BODY
        )


def test_missing_partner_secret_is_permanent(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps(webhook_allow_local=True, effect_ledger=MemoryEffectLedger())
    with pytest.raises(PermanentJobError, match="PARTNER_ACME"):
        _run(deps, _job(new_job, receiver.url))
    assert receiver.deliveries == []


def test_secret_names_are_confined_to_the_prefix(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps(
        webhook_allow_local=True,
        webhook_secret_prefix="partners/",
        environ={"PARTNERS_PARTNER_ACME": receiver.secret, "STRIPE_KEY": "sk_live_x"},
        effect_ledger=MemoryEffectLedger(),
    )
    _run(deps, _job(new_job, receiver.url))
    assert len(receiver.accepted) == 1
    with pytest.raises(PermanentJobError, match="plain name"):
        _run(deps, _job(new_job, receiver.url, webhookSecretRef="../stripe-key"))


def test_body_is_compact_sorted_json(
    receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    _run(_deps(receiver), _job(new_job, receiver.url))
    body = receiver.deliveries[0].body
    assert body == json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True).encode()


def test_next_checked_address_is_tried_when_connecting_fails(receiver: WebhookReceiver) -> None:
    """``localhost`` often resolves to ::1 first while a server listens on 127.0.0.1 only."""
    sender = WebhookSender(allow_local=True, resolver=lambda host, port: ["::1", "127.0.0.1"])
    result = sender.deliver(
        url=f"http://localhost:{receiver.port}/hooks",
        secret=receiver.secret,
        message_id="msg_fallback",
        body=BODY,
    )
    assert result.address == "127.0.0.1"
    assert len(receiver.accepted) == 1


def test_an_answer_is_final_even_when_more_addresses_remain(receiver: WebhookReceiver) -> None:
    receiver.respond_next(1, 500)
    sender = WebhookSender(allow_local=True, resolver=lambda host, port: ["127.0.0.1", "127.0.0.2"])
    with pytest.raises(RetryableJobError, match="HTTP 500"):
        sender.deliver(
            url=f"http://partner.invalid:{receiver.port}/hooks",
            secret=receiver.secret,
            message_id="msg_once",
            body=BODY,
        )
    assert len(receiver.deliveries) == 1
