"""Records survive the trip to DynamoDB items and back; keys follow the documented layout."""

from __future__ import annotations

from escrow import items
from escrow.idempotency import IdempotencyRecord
from escrow.models import Escrow, HistoryEntry, Party
from escrow.outbox import OUTBOX_SHARDS, OutboxEntry, outbox_shard
from escrow.state import Action, EscrowState
from jobs_core import JobType


def roundtrip(values: dict[str, object]) -> dict[str, object]:
    return items.plain(items.attributes(values))


def test_escrow_roundtrip_with_and_without_optional_fields() -> None:
    full = Escrow(
        escrow_id="esc_1",
        state=EscrowState.RELEASING,
        version=7,
        amount=123,
        currency="EUR",
        buyer=Party("b", "b@example.com", "Bea"),
        seller=Party("s", "s@example.com"),
        payment_intent_id="pi_1",
        created_by="b",
        created_ms=1,
        updated_ms=2,
        description="d",
        webhook_url="https://p.example.com",
        webhook_secret_ref="ref",
        pending_action=Action.RELEASE,
        pending_from=EscrowState.FUNDED,
        pending_since_ms=3,
        stripe_action="captured",
        dispute_reason="r",
        resolution_note="n",
    )
    bare = full.evolve(
        description=None, webhook_url=None, webhook_secret_ref=None, pending_action=None,
        pending_from=None, pending_since_ms=None, stripe_action=None, dispute_reason=None,
        resolution_note=None, seller=Party("s", "s@example.com", None),
    )  # fmt: skip
    for escrow in (full, bare):
        item = items.escrow_to_item(escrow)
        assert (item["pk"], item["sk"]) == ("ESCROW#esc_1", "ESCROW")
        assert items.escrow_from_item(roundtrip(item)) == escrow
    assert "webhook_url" not in items.attributes(items.escrow_to_item(bare))  # nulls are not stored


def test_history_sorts_by_version_after_the_escrow_item() -> None:
    entry = HistoryEntry("esc_1", 12, Action.DISPUTE, EscrowState.FUNDED, EscrowState.DISPUTED,
                         "b", 5, "req", "why", None)  # fmt: skip
    item = items.history_to_item(entry)
    assert item["sk"] == "HIST#0000000012"
    assert "ESCROW" < "HIST#0000000002" < "HIST#0000000012"
    assert items.history_from_item(roundtrip(item)) == entry


def test_outbox_items_live_in_shard_partitions_sorted_by_time() -> None:
    entry = OutboxEntry(JobType.AUDIT_LOG_CREATED, {"transaction_id": "esc_1", "b": [1]},
                        "escrow-esc_1-released-audit_log_created", "esc_1", 42, "req")  # fmt: skip
    item = items.outbox_to_item(entry)
    assert item["pk"] == f"OUTBOX#{outbox_shard('esc_1')}"
    assert 0 <= outbox_shard("esc_1") < OUTBOX_SHARDS
    assert item["sk"] == "0000000000042#escrow-esc_1-released-audit_log_created"
    assert items.outbox_from_item(roundtrip(item)) == entry
    shards = {outbox_shard(f"esc_{i}") for i in range(200)}
    assert shards == set(range(OUTBOX_SHARDS))  # spread over every shard


def test_idempotency_record_liveness() -> None:
    record = IdempotencyRecord("scope", "hash", "in_progress", "tok", 2_000, 100)
    assert items.idem_from_item(roundtrip(items.idem_to_item(record))) == record
    assert record.is_live(1_999)  # locked
    assert not record.is_live(2_000)  # abandoned: its lock ran out
    done = IdempotencyRecord("scope", "hash", "completed", "tok", 0, 100, 200, "{}")
    assert done.is_live(99_999)
    assert not done.is_live(100_000)  # expired (TTL deletes lazily)


def test_attribute_values_keep_lists_maps_nulls_and_numbers() -> None:
    """boto3's serializer both ways: nothing is dropped on the way back from DynamoDB."""
    values = {
        "tags": ["a", "b"],
        "meta": {"n": 3, "nested": {"ok": True, "none": None}, "list": [1, "x"]},
        "count": 12,
        "flag": False,
        "text": "t",
    }
    item = items.attributes({**values, "skipped": None})
    assert "skipped" not in item  # an absent attribute reads back as None
    assert item["tags"] == {"L": [{"S": "a"}, {"S": "b"}]}
    assert item["meta"]["M"]["nested"]["M"]["none"] == {"NULL": True}
    assert items.plain(item) == values
    # Items written by another tool (a NULL attribute, a number set) read back too.
    assert items.plain({"gone": {"NULL": True}, "ns": {"NS": ["1", "2"]}}) == {
        "gone": None,
        "ns": {1, 2},
    }
