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
    rand = int.from_bytes(os.urandom(10), "big")
    value = (now_ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62)
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return _uuid_text(value)


def dedupe_job_id(dedupe_key: str) -> str:
    """The id of the job enqueued under ``dedupe_key``: a UUIDv8 (RFC 9562) of 122 bits of
    the key's SHA-256. Deriving the id from the key makes the job's record the dedupe key
    (the enqueue writes it NX): deduplication costs no Redis key or command of its own, and
    holds as long as the record does. ``uuid.UUID(job_id).version == 8``."""
    digest = int.from_bytes(hashlib.sha256(DEDUPE_ID_SALT + dedupe_key.encode()).digest()[:16])
    value = (digest & ~(0xF << 76) & ~(0b11 << 62)) | (0x8 << 76) | (0b10 << 62)
    return _uuid_text(value)


DEDUPE_ID_SALT = b"escrow-jobs dedupe key\0"


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
