"""Test-only servers: a real redis-server we own, and an Upstash REST stand-in."""

from tests.support.redis_server import RedisServer, find_redis_server_binary, free_port
from tests.support.upstash_server import BAD_GATEWAY_HTML, UpstashServer

__all__ = [
    "BAD_GATEWAY_HTML",
    "RedisServer",
    "UpstashServer",
    "find_redis_server_binary",
    "free_port",
]
