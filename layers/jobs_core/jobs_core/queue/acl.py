"""The least a Redis (or Upstash) user needs to run this queue: ACL rules per role.

Two roles, each limited to the keys of one queue namespace (``{ns}:*``) and to the
commands the Lua scripts call, with no admin, config or other dangerous command:

- ``queue``: the escrow API and the processor; runs every script (EVALSHA/EVAL).
- ``monitor``: the monitor (and read-only operators); runs only the scripts that read,
  as EVALSHA_RO / EVAL_RO, on read-only keys (``%R~``).

The commands come from the scripts themselves, so a script that starts calling another
command gets it in its role's rules (and the ACL tests run every script under them).

>>> acl_rules("escrow-jobs", role="monitor")[-1]
'%R~{escrow-jobs}:*'

``python -m jobs_core.queue.acl NAMESPACE ROLE USER`` prints the ``ACL SETUSER`` line to
run (with ``>TOKEN`` standing for the user's password, from ``ACL GENTOKEN``).
"""

from __future__ import annotations

import re
from typing import Literal

from . import scripts
from .keys import QueueKeys

Role = Literal["queue", "monitor"]

_CALL = re.compile(r"""redis\.(?:p?call)\(\s*['"]([A-Za-z]+)['"]""")
_ALL = tuple(v for v in vars(scripts).values() if isinstance(v, scripts.Script))


def commands_of(*chosen: scripts.Script) -> list[str]:
    """The Redis commands the scripts call, lower-cased and sorted."""
    return sorted({m.lower() for s in chosen for m in _CALL.findall(s.source)})


def acl_rules(namespace: str, *, role: Role) -> list[str]:
    """``ACL SETUSER <user> on ><password> <rules...>``: the rules of ``role``."""
    pattern = QueueKeys(namespace).prefix + "*"
    if role == "monitor":
        readers = [s for s in _ALL if s.read_only]
        allowed = ["evalsha_ro", "eval_ro", *commands_of(*readers)]
        keys = "%R~" + pattern
    else:
        allowed = ["evalsha", "eval", "evalsha_ro", "eval_ro", *commands_of(*_ALL)]
        keys = "~" + pattern
    # PING: redis-py's health check on a connection idle for 30 s.
    return ["resetkeys", "resetchannels", "-@all", "+ping", *(f"+{c}" for c in allowed), keys]


def setuser_command(namespace: str, role: Role, user: str) -> str:
    """The ``ACL SETUSER`` command that creates ``user`` with ``role``'s rules."""
    return " ".join(["ACL", "SETUSER", user, "on", ">TOKEN", *acl_rules(namespace, role=role)])


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4 or sys.argv[2] not in ("queue", "monitor"):
        sys.exit("usage: python -m jobs_core.queue.acl NAMESPACE queue|monitor USER")
    print(setuser_command(sys.argv[1], sys.argv[2], sys.argv[3]))  # type: ignore[arg-type]
