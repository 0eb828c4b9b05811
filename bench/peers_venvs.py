"""Create one virtualenv per peer queue under ``.bench-venvs/<peer>``.

Peers pin different redis-py versions, so each gets its own venv and its own
interpreter; the drivers in ``bench/peers/`` run inside them. Idempotent: a venv
whose interpreter can already import the peer is left alone.

    python -m bench.peers_venvs            # create the missing ones
    python -m bench.peers_venvs --force    # reinstall all
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENVS_DIR = REPO_ROOT / ".bench-venvs"

# peer name -> (pip requirements, importable module, distribution for the version).
# saq 0.26 imports typing_extensions without declaring it, hence the extra requirement.
PEERS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "rq": (("rq",), "rq", "rq"),
    "arq": (("arq",), "arq", "arq"),
    "saq": (("saq[redis]", "typing_extensions"), "saq", "saq"),
    "dramatiq": (("dramatiq[redis]", "hiredis"), "dramatiq", "dramatiq"),
    "huey": (("huey", "redis", "hiredis"), "huey", "huey"),
    "bullmq": (("bullmq", "hiredis"), "bullmq", "bullmq"),
    "taskiq": (("taskiq", "taskiq-redis", "hiredis"), "taskiq_redis", "taskiq-redis"),
}


def venv_python(peer: str) -> Path:
    """The interpreter of a peer's venv (which may not exist yet)."""
    return VENVS_DIR / peer / "bin" / "python"


def peer_version(peer: str) -> str | None:
    """The installed version of a peer in its venv, or None when it is missing."""
    python = venv_python(peer)
    if not python.exists():
        return None
    _, module, dist = PEERS[peer]
    code = f"import {module}, importlib.metadata as m; print(m.version({dist!r}))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_venv(peer: str, *, force: bool = False) -> str:
    """Create and fill ``.bench-venvs/<peer>`` unless it already works; return the version."""
    if not force and (version := peer_version(peer)) is not None:
        return version
    requirements = PEERS[peer][0]
    venv.EnvBuilder(with_pip=True, clear=force).create(VENVS_DIR / peer)
    subprocess.run(
        [str(venv_python(peer)), "-m", "pip", "install", "--quiet", "--upgrade", *requirements],
        check=True,
    )
    version = peer_version(peer)
    if version is None:
        raise RuntimeError(f"{peer}: installed but cannot be imported")
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="recreate every venv")
    parser.add_argument("peers", nargs="*", help=f"subset of {', '.join(PEERS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    for peer in args.peers or PEERS:
        print(f"{peer:10} {ensure_venv(peer, force=args.force)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
