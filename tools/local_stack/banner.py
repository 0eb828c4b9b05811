"""What the developer reads once the stack is up: where everything is, dev tokens, and
``curl`` commands for one escrow's life (create, pay, release)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def shown_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (the banner is a log too)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def banner_text(info: Mapping[str, Any], *, process_every_s: float) -> str:
    """The lines printed once the stack is up; ``info`` is ``LocalStack.info()``."""
    api = info["apiUrl"]
    users = info["users"]
    partner = info["demoPartner"]
    redis_url = shown_url(info["redisUrl"]) if info["redisUrl"] else None
    if redis_url and redis_url != info["redisUrl"]:
        cli_env = ".venv/bin/escrow-jobs stats   # with the same REDIS_URL (it holds a password)"
    elif redis_url:
        cli_env = f"REDIS_URL={redis_url} .venv/bin/escrow-jobs stats"
    elif info["backend"] == "upstash":
        cli_env = ".venv/bin/escrow-jobs stats   # with the same UPSTASH_REDIS_REST_* variables"
    else:
        cli_env = (
            "# escrow-jobs cannot reach the in-memory Redis of this process: "
            "install redis-server or set REDIS_URL"
        )
    create = json.dumps(
        {
            "amount": 10000,
            "currency": "USD",
            "buyer": {"id": users["buyer"]["sub"], "email": users["buyer"]["email"]},
            "seller": {"id": users["seller"]["sub"], "email": users["seller"]["email"]},
            "webhookUrl": partner["webhookUrl"],
            "webhookSecretRef": partner["webhookSecretRef"],
        }
    )
    return f"""
escrow-jobs local stack is up: {api}
  Redis: {info["backend"]}{" at " + redis_url if redis_url else ""}
  AWS (moto): {info["awsEndpoint"]}   tables: {", ".join(info["tables"].values())}
  Stripe (local): {info["stripeApiBase"]}   mailbox: {info["mailboxDir"]}
  processor every {process_every_s:g}s (and on each kick); monitor every minute

Dev tokens (HS256, valid 12 h):
  export API={api}
  export BUYER={users["buyer"]["token"]}
  export SELLER={users["seller"]["token"]}
  export ADMIN={users["admin"]["token"]}
  export PROCESSOR_TOKEN={info["processorToken"]}

One escrow, create -> pay -> release:
  # 1. the buyer creates it (note the escrow id in the answer)
  curl -s -X POST $API/api/escrow -H "Authorization: Bearer $BUYER" \\
       -H 'Content-Type: application/json' -d '{create}'
  # 2. the buyer pays: Stripe authorises, the signed webhook funds the escrow
  curl -s -X POST $API/_local/stripe/pay -d '{{"escrowId": "ESCROW_ID"}}'
  # 3. the buyer releases the funds to the seller
  curl -s -X POST $API/api/escrow/release -H "Authorization: Bearer $BUYER" \\
       -H 'Content-Type: application/json' -d '{{"escrowId": "ESCROW_ID"}}'
  # the escrow and its history; the emails; the partner's webhooks; the queue
  curl -s $API/api/escrow/ESCROW_ID -H "Authorization: Bearer $BUYER"
  ls {info["mailboxDir"]}
  curl -s $API/_local/partner/webhooks
  curl -s $API/api/jobs/process -H "Authorization: Bearer $PROCESSOR_TOKEN"
  {cli_env}

Ctrl-C stops everything.
"""
