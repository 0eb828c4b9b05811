"""``escrow-jobs reconcile``: compare the escrows with Stripe, as the hourly run does.

It invokes the escrow API function (``--function``, or ``ESCROW_API_FUNCTION_NAME``)
with ``{"task": "reconcile"}``, the event of its hourly schedule: the function has
the table, the Stripe key and the domain code; this command only shows its answer.
Nothing is changed, at Stripe or in the table. ``AWS_ENDPOINT_URL_LAMBDA`` points it at
the local stack. Exit code 5 when some escrow disagrees with Stripe.
"""

from __future__ import annotations

import json
from typing import Any

from .. import render
from ..cli import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK, EXIT_UNREACHABLE, Cli, CliError

ENV_FUNCTION = "ESCROW_API_FUNCTION_NAME"


def cmd_reconcile(cli: Cli) -> int:
    env = cli.env()
    name = cli.args.function or env.get(ENV_FUNCTION)
    if not name:
        raise CliError(
            EXIT_BAD_INPUT, "usage", f"name the escrow API function: --function or {ENV_FUNCTION}"
        )
    event: dict[str, Any] = {"task": "reconcile"}
    if cli.args.days is not None:
        event["closedWithinDays"] = cli.args.days
    report = _invoke(env, name, event)
    drifts = report.get("drifts") or []
    rows = [[d["escrow_id"], d["state"], d["kind"], d["ours"], d["stripe"]] for d in drifts]
    summary = (
        f"checked {report.get('checked', 0)} escrow(s): {report.get('driftedEscrows', 0)} "
        f"disagree with Stripe; {report.get('skipped', 0)} skipped (a Stripe call in flight)"
        + (f", {report['unchecked']} left for the next run" if report.get("unchecked") else "")
    )
    text = summary
    if rows:
        table = render.table(["ESCROW", "STATE", "DRIFT", "OURS", "STRIPE"], rows)
        text = table + "\n\n" + summary
    cli.emit(report, text)
    return EXIT_DRIFT if drifts else EXIT_OK


def _invoke(env: dict[str, str], name: str, event: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    endpoint = env.get("AWS_ENDPOINT_URL_LAMBDA") or env.get("AWS_ENDPOINT_URL") or None
    try:
        client = boto3.client("lambda", region_name=region, endpoint_url=endpoint)
        out = client.invoke(
            FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(event)
        )
        body = json.loads(out["Payload"].read() or b"{}")
    except (BotoCoreError, ClientError, ValueError) as exc:
        raise CliError(EXIT_UNREACHABLE, "unreachable", f"could not invoke {name}: {exc}") from None
    if out.get("FunctionError") or not isinstance(body, dict):
        message = body.get("errorMessage") if isinstance(body, dict) else str(body)
        raise CliError(EXIT_UNREACHABLE, "function_error", f"{name} failed: {message}")
    return body
