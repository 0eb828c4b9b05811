"""``escrow-jobs partners list|show|enable``: partners' webhook endpoints (the queue's gate).

A 410 disables a partner's endpoint: its webhooks are held (no attempt spent, none
dead-lettered) until ``partners enable REF`` makes them due again.
"""

from __future__ import annotations

from typing import Any

from jobs_core import PartnerHealth

from ..cli import EXIT_DECLINED, EXIT_OK, Cli


def _view(h: PartnerHealth) -> dict[str, Any]:
    return h.model_dump(mode="json")


def _line(h: PartnerHealth) -> str:
    state = f"disabled ({h.disabled})" if h.disabled else "enabled"
    if h.circuit_open_until is not None:
        state += f", circuit open until {h.circuit_open_until.isoformat()}"
    return (
        f"{h.partner}: {state}; {h.held} held, {h.in_flight} in flight, "
        f"{h.consecutive_failures} consecutive failures"
    )


def cmd_partners_list(cli: Cli) -> int:
    partners = cli.queue().partner_health()
    text = "\n".join(_line(h) for h in partners) or "no partner endpoint is disabled"
    cli.emit({"disabled": [_view(h) for h in partners]}, text)
    return EXIT_OK


def cmd_partners_show(cli: Cli) -> int:
    [health] = cli.queue().partner_health([cli.args.partner])
    cli.emit(_view(health), _line(health))
    return EXIT_OK


def cmd_partners_enable(cli: Cli) -> int:
    queue = cli.queue()
    [before] = queue.partner_health([cli.args.partner])
    moved = queue.enable_partner(cli.args.partner, actor=cli.actor())
    data = {"partner": cli.args.partner, "was_disabled": before.disabled is not None,
            "released": moved}  # fmt: skip
    if before.disabled is None and moved == 0:
        cli.emit(data, f"{cli.args.partner} was not disabled; nothing to do")
        return EXIT_DECLINED
    cli.emit(data, f"{cli.args.partner} enabled: {moved} held webhooks are due now")
    return EXIT_OK
