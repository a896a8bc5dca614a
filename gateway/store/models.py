"""Table definitions (SQLAlchemy Core), shared by the repositories and Alembic.

``events`` is append-only: the migrations add triggers that refuse UPDATE
and DELETE on both SQLite and PostgreSQL. ``batches``, ``anchors`` and
``event_statuses`` belong to the trust path; an event without a status row
is *pending*.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

identities = Table(
    "identities",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("msp_id", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("certificate", Text, nullable=False),
    Column("not_after_ms", BigInteger, nullable=False),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
)

challenges = Table(
    "challenges",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("address", String(64), nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger, nullable=True),
    Index("ix_challenges_expires_ms", "expires_ms"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("fingerprint", String(64), ForeignKey("identities.fingerprint"), nullable=False),
    Column("msp_id", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("address", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    # Hash of the current refresh token: rotating it invalidates the old one.
    Column("refresh_hash", String(64), nullable=False),
    Column("refresh_expires_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
    Index("ix_sessions_fingerprint", "fingerprint"),
)

# One row per session ended (a logout, a failed re-check), in the same transaction
# as the session's revoked_ms: other gateway processes follow it by id, a primary-key
# range scan, to end those sessions within a second. Rows are short-lived (purged
# after a few minutes); ``sessions.revoked_ms`` stays the truth.
session_ends = Table(
    "session_ends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("ended_ms", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    # Unique per (channel, signer): see uq_events_channel_signer_id below.
    Column("id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("client_ts", BigInteger, nullable=False),
    Column("signer", String(64), nullable=False),
    Column("msp_id", String(128), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    # The RFC 8785 bytes the member signed; the payload is read back from them.
    Column("body", LargeBinary, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    UniqueConstraint("channel", "signer", "id", name="uq_events_channel_signer_id"),
    # The dedupe lookup of a batch asks by id alone (ids IN (...)), then matches keys.
    Index("ix_events_id", "id"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("prev_root", LargeBinary, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=True),
    Column("state", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("channel", "number", name="uq_batches_channel_number"),
    UniqueConstraint("channel", "first_seq", name="uq_batches_channel_first_seq"),
)

anchors = Table(
    "anchors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("tx_id", String(128), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("submitted_ms", BigInteger, nullable=True),
    Column("confirmed_ms", BigInteger, nullable=True),
    Column("finalized_ms", BigInteger, nullable=True),
    Index("ix_anchors_batch_id", "batch_id"),
)

event_statuses = Table(
    "event_statuses",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=True),
    Column("leaf_index", BigInteger, nullable=True),
    Column("tx_id", String(128), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

# -- trust path, added by the anchoring package (revision 0002) -----------------------------

# The leaf hashes of one batch (32 bytes each, in seq order), kept so proofs and the
# channel log's checkpoints do not re-hash every event.
batch_leaves = Table(
    "batch_leaves",
    metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)

# Small named positions the trust path must keep across restarts (the chaincode-event
# follower's checkpoint).
trust_cursors = Table(
    "trust_cursors",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# -- shared store, several gateway processes on PostgreSQL (revision 0003) ----------------

# The last sequence number taken per channel. PostgreSQL only: a commit takes its
# numbers with one UPDATE ... RETURNING on the channel's row, whose row lock orders
# every process's commits on that channel (gateway.store.events).
channel_heads = Table(
    "channel_heads",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# Named leases with a fencing epoch (the anchor lease: gateway.store.lease).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=True),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("acquired_ms", BigInteger, nullable=False),
)

# Secrets every gateway process of one store must agree on (the token-signing key
# when gateway.token_secret is not set).
shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


# -- marketplace, added by the marketplace package (revision 0003_market) --------------------

# One row per auction, the truth a restarted gateway rebuilds its auctions from (bids are
# read back from ``events``). ``state``: opening (row written, open event not yet stored)
# → open → closing (winner decided, close event chosen) → closed (close event stored).
# ``close_event`` and each settlement step keep the id and client_ts of the event the
# gateway publishes, so a retried publication stores nothing twice.
market_auctions = Table(
    "market_auctions",
    metadata,
    Column("auction_id", String(40), primary_key=True),
    Column("channel", String(64), nullable=False, unique=True),
    Column("item", Text, nullable=False),
    Column("reserve", BigInteger, nullable=False),
    Column("closes_at_ms", BigInteger, nullable=False),
    Column("premium", Integer, nullable=False),
    Column("seller_msp", String(128), nullable=False),
    Column("seller_fingerprint", String(64), nullable=False),
    Column("open_event_id", String(128), nullable=False),
    Column("open_seq", BigInteger, nullable=True),
    Column("state", String(16), nullable=False),
    Column("winner_seq", BigInteger, nullable=True),
    Column("buyer_msp", String(128), nullable=True),
    Column("buyer_fingerprint", String(64), nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("close_event", Text, nullable=True),
    Column("close_seq", BigInteger, nullable=True),
    Column("settlement_state", String(16), nullable=True),
    Column("settlement", Text, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_market_auctions_state", "state"),
    Index("ix_market_auctions_settlement_state", "settlement_state"),
)
