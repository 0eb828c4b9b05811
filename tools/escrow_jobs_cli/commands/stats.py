"""``escrow-jobs stats [--watch]``: queue depth per job type, once or until Ctrl-C."""

from __future__ import annotations

import json
import time

from .. import render
from ..cli import EXIT_OK, Cli


def cmd_stats(cli: Cli) -> int:
    try:
        return _stats(cli)
    except KeyboardInterrupt:
        if not cli.args.watch:
            raise
        return EXIT_OK  # Ctrl-C is how a watch ends


def _stats(cli: Cli) -> int:
    queue = cli.queue()
    refreshes = 0
    watch = cli.args.watch
    while True:
        stats = queue.get_queue_stats()
        view = render.stats_view(
            stats, namespace=queue.settings.namespace, backend=queue.settings.backend
        )
        if cli.json:
            # one document, or one JSON line per refresh when watching
            line = json.dumps(view) if watch else render.dumps(view)
            cli.out.write(line + "\n")
        else:
            if watch and render._isatty(cli.out):
                cli.out.write("\x1b[H\x1b[2J")  # clear the screen, cursor home
            stamp = time.strftime("%H:%M:%S")
            footer = f"\n\n{stamp}  refreshing every {cli.args.interval:g}s, Ctrl-C to stop"
            cli.out.write(
                render.stats_text(view, width=cli.width) + (footer if watch else "") + "\n"
            )
        cli.out.flush()
        refreshes += 1
        if not watch or (cli.args.count and refreshes >= cli.args.count):
            return EXIT_OK
        cli.sleep(cli.args.interval)
