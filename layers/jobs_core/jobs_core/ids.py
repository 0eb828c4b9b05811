"""Job ids: a UUIDv7 for a job of its own, or one derived from its dedupe key."""

from __future__ import annotations

import hashlib
import os


def new_job_id(now_ms: int) -> str:
    """A UUIDv7 (RFC 9562) for ``now_ms``: 48 bits of milliseconds, then 74 random bits.

    Lower-case hex of fixed width, so ids sort by creation time as strings too;
    ``uuid.UUID(job_id).version == 7``. Built by hand because it is on the enqueue hot
    path (about 1 µs; ``uuid.uuid7`` arrives with Python 3.14).
    """
    raw = bytearray(now_ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7, then 12 random bits
    raw[8] = 0x80 | (raw[8] & 0x3F)  # variant 0b10, then 62 random bits
    return _hex_text(raw.hex())


def dedupe_job_id(dedupe_key: str) -> str:
    """The id of the job enqueued under ``dedupe_key``: a UUIDv8 (RFC 9562) of 122 bits of
    the key's SHA-256. Deriving the id from the key makes the job's record the dedupe key
    (the enqueue writes it NX): deduplication costs no Redis key or command of its own, and
    holds as long as the record does. ``uuid.UUID(job_id).version == 8``."""
    digest = int.from_bytes(hashlib.sha256(DEDUPE_ID_SALT + dedupe_key.encode()).digest()[:16])
    value = (digest & ~(0xF << 76) & ~(0b11 << 62)) | (0x8 << 76) | (0b10 << 62)
    return _hex_text(f"{value:032x}")


DEDUPE_ID_SALT = b"escrow-jobs dedupe key\0"


def _hex_text(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
