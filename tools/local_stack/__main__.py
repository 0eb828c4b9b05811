"""``python -m local_stack``: what ``make dev`` runs (options: ``config``).

Ctrl-C (SIGINT) or SIGTERM stops everything; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from .config import parse_args
from .emf import say
from .stack import LocalStack


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv, os.environ)
    logging.basicConfig(
        level=getattr(logging, config.log_level, logging.WARNING),
        format="%(asctime)s  %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    logging.getLogger("local_stack").setLevel(logging.INFO)  # our own lines, always
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "httpx", "moto", "stripe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stop = threading.Event()
    stack = LocalStack(config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait any longer
            if stack.redis is not None:
                stack.redis.stop()
            os._exit(130)
        stop.set()  # first: saying so may fail (a closed pipe), the stop must not
        say(f"{signal.Signals(signum).name}: stopping (again to force)")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except Exception as exc:
        say(f"the local stack could not start: {type(exc).__name__}: {exc}")
        logging.getLogger("local_stack.stack").debug("start failed", exc_info=True)
        stack.stop()
        return 1
    say(stack.banner())
    while not stop.wait(0.5):
        pass
    stack.stop()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
