"""Injected DNS for tests: a fixed table of names, so no test depends on the network's DNS."""

from __future__ import annotations

import socket
from collections.abc import Mapping


class StaticResolver:
    """A ``jobs_core.Resolver`` answering from ``table`` (name -> addresses); any other
    name does not resolve (``socket.gaierror``, as the system resolver raises)."""

    def __init__(self, table: Mapping[str, list[str]]) -> None:
        self.table = {name.lower().rstrip("."): list(a) for name, a in table.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        try:
            return list(self.table[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


# example.com's public address range (IANA): what a partner's real host would resolve to.
PUBLIC_ADDRESS = "93.184.215.14"
PARTNER_DNS = StaticResolver(
    {
        "partner.example.com": [PUBLIC_ADDRESS],
        "partner.example": [PUBLIC_ADDRESS],
        "hooks.partner.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", PUBLIC_ADDRESS],
        "internal.partner.example": ["10.1.2.3"],
        "mixed.partner.example": [PUBLIC_ADDRESS, "169.254.169.254"],
        "rebind.partner.example": ["::ffff:127.0.0.1"],
    }
)
