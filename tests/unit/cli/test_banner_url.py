"""The local stack's banner never prints a password from REDIS_URL (an ACL user's, on a
cluster or not)."""

from __future__ import annotations

from typing import Any

from local_stack.banner import banner_text, shown_url


def info(redis_url: str | None) -> dict[str, Any]:
    user = {"sub": "u", "email": "u@example.com", "token": "t"}
    return {
        "apiUrl": "http://127.0.0.1:3000",
        "users": {"buyer": user, "seller": user, "admin": user},
        "demoPartner": {"webhookUrl": "http://x", "webhookSecretRef": "demo"},
        "backend": "redis",
        "redisUrl": redis_url,
        "awsEndpoint": "http://127.0.0.1:5000",
        "tables": {"EscrowTable": "t"},
        "stripeApiBase": "http://127.0.0.1:12111",
        "mailboxDir": ".local/mailbox",
        "processorToken": "p",
    }


def test_a_password_in_the_url_is_masked() -> None:
    url = "rediss://queue:hunter2@cache.example.com:6380"
    assert shown_url(url) == "rediss://queue:***@cache.example.com:6380"
    text = banner_text(info(url), process_every_s=2)
    assert "hunter2" not in text
    assert "rediss://queue:***@cache.example.com:6380" in text


def test_a_url_without_password_is_shown_as_is_with_the_cli_line() -> None:
    text = banner_text(info("redis://127.0.0.1:7001"), process_every_s=2)
    assert "REDIS_URL=redis://127.0.0.1:7001 .venv/bin/escrow-jobs stats" in text
