"""The gateway's key history: which key signed which batches and checkpoints.

When the gateway's signing key is rotated (``anchorline gateway rotate-key``)
the old key is *retired*: the history records, per channel, the last batch
it signed and the size of the channel log at that moment. Proofs and
checkpoints made before stay verifiable with the key of their time; anything
the retired key signs beyond those marks is refused, whatever its
timestamps say, because the marks are positions in append-only chains (the
anchor chaincode's batch heights, the channel log's size) that a holder of
the old key cannot move back. Format: docs/proof-format.md ("Key history").

- :class:`KeyHistory` and :class:`GatewayKey` — the document
  (``anchorline.gateway-keys/1``), JSON round trip, and the checks:
  :meth:`KeyHistory.check_batch` (the proof check ``gateway-key``) and
  :meth:`KeyHistory.verify_checkpoint`.
- :func:`load_history`, :func:`ensure_current` (at start: the configured key
  must be the current one; an empty history starts with it),
  :func:`rotate` — kept in the trust path's store (``trust_cursors``).
- :func:`anchor_position` — the anchored batch's time and height as the
  ledger records them: the time certificates are checked at ("valid at the
  time"), the height the ``gateway-key`` check compares with the marks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.anchoring.checkpoint import (
    Checkpoint,
    EcdsaNoteVerifier,
    ecdsa_key_id,
    open_note,
)
from gateway.anchoring.errors import GatewayKeyRetired, GatewayKeyUnknown, KeyHistoryError
from gateway.anchoring.ledger import AnchorLedger
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.proof import Check, EventProof
from gateway.errors import AnchorlineError
from gateway.identity.certificates import fingerprint, load_certificate
from gateway.identity.msp import Identity
from gateway.merkle.errors import NoteVerificationError

HISTORY_FORMAT: Final = "anchorline.gateway-keys/1"
#: The ``trust_cursors`` row that holds the history (JSON).
CURSOR: Final = "gateway.key_history"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


@dataclasses.dataclass(frozen=True)
class Mark:
    """How far a retired key got in one channel: batches ``1..batches`` (anchor heights
    ``0..batches-1``) and the channel log's first ``log_size`` leaves."""

    batches: int
    log_size: int


@dataclasses.dataclass(frozen=True)
class GatewayKey:
    """One certificate (and key) the gateway signed with, and when."""

    certificate_pem: str
    msp_id: str
    valid_from_ms: int
    retired_at_ms: int | None = None
    retired_after: Mapping[str, Mark] = dataclasses.field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(load_certificate(self.certificate_pem))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = load_certificate(self.certificate_pem).public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise KeyHistoryError("a key history certificate does not hold an EC key")
        return key

    @property
    def key_id(self) -> str:
        """The signed-note key ID (8 hex digits) this key signs checkpoints with."""
        return f"{ecdsa_key_id(self.public_key):08x}"

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "key_id": self.key_id,
            "msp_id": self.msp_id,
            "certificate": self.certificate_pem,
            "valid_from": _iso(self.valid_from_ms),
            "valid_from_ms": self.valid_from_ms,
            "retired_at": _iso(self.retired_at_ms) if self.retired_at_ms is not None else None,
            "retired_at_ms": self.retired_at_ms,
            "retired_after": {
                channel: {"batches": m.batches, "log_size": m.log_size}
                for channel, m in sorted(self.retired_after.items())
            },
        }

    @classmethod
    def from_json(cls, obj: Any) -> GatewayKey:
        try:
            marks = {
                str(c): Mark(int(m["batches"]), int(m["log_size"]))
                for c, m in dict(obj.get("retired_after") or {}).items()
            }
            retired = obj.get("retired_at_ms")
            key = cls(
                certificate_pem=str(obj["certificate"]),
                msp_id=str(obj["msp_id"]),
                valid_from_ms=int(obj["valid_from_ms"]),
                retired_at_ms=None if retired is None else int(retired),
                retired_after=marks,
            )
            key.public_key  # noqa: B018 - refuse a history whose certificate is unusable
        except (KeyError, TypeError, ValueError, AttributeError, AnchorlineError) as exc:
            raise KeyHistoryError(f"not a key history entry: {exc}") from None
        return key


@dataclasses.dataclass(frozen=True)
class KeyHistory:
    """Every key of the gateway, oldest first; the last one is current."""

    keys: tuple[GatewayKey, ...] = ()

    @property
    def current(self) -> GatewayKey | None:
        return self.keys[-1] if self.keys else None

    def find(self, certificate_pem: str) -> GatewayKey | None:
        """The entry of that certificate (compared by fingerprint)."""
        try:
            wanted = fingerprint(load_certificate(certificate_pem))
        except Exception:
            return None
        return next((k for k in self.keys if k.fingerprint == wanted), None)

    def to_json(self) -> dict[str, Any]:
        return {"format": HISTORY_FORMAT, "keys": [k.to_json() for k in self.keys]}

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> KeyHistory:
        try:
            obj = json.loads(data) if isinstance(data, str | bytes) else data
        except ValueError as exc:
            raise KeyHistoryError(f"the key history is not JSON: {exc}") from None
        if not isinstance(obj, Mapping) or obj.get("format") != HISTORY_FORMAT:
            raise KeyHistoryError(f"not a key history document (format {HISTORY_FORMAT})")
        keys = obj.get("keys")
        if not isinstance(keys, list):
            raise KeyHistoryError("the key history has no list of keys")
        return cls(tuple(GatewayKey.from_json(k) for k in keys))

    # -- checks ---------------------------------------------------------------------------

    def check_batch(self, certificate_pem: str, channel: str, height: int) -> Check:
        """The ``gateway-key`` check of a proof: its batch, at anchor ``height`` (0 for
        a channel's first batch) of ``channel``, was signed by a key of this history
        that was not yet retired at that position."""
        key = self.find(certificate_pem)
        if key is None:
            return Check(
                "gateway-key", False, "the batch's certificate is not in the gateway's key history"
            )
        if key.retired_at_ms is None:
            return Check("gateway-key", True, f"signed by the current key {key.key_id}")
        mark = key.retired_after.get(channel)
        last = mark.batches if mark else 0
        if height + 1 > last:
            return Check(
                "gateway-key",
                False,
                f"signed by key {key.key_id} after its retirement at {_iso(key.retired_at_ms)}: "
                f"it signed only batches 1..{last} of {channel}, this one is batch {height + 1}",
            )
        return Check(
            "gateway-key",
            True,
            f"signed by key {key.key_id}, valid for batches 1..{last} of {channel} (retired "
            f"{_iso(key.retired_at_ms)})",
        )

    def verifiers(self, origin: str) -> list[EcdsaNoteVerifier]:
        """Note verifiers of every key, under the checkpoint ``origin``."""
        return [EcdsaNoteVerifier(origin, k.public_key) for k in self.keys]

    def verify_checkpoint(self, data: str | bytes, *, origin: str, channel: str) -> Checkpoint:
        """A checkpoint of ``channel`` signed by a key of this history that had not
        been retired at that log size; :class:`NoteVerificationError` otherwise."""
        note, good = open_note(data, self.verifiers(origin))
        checkpoint = Checkpoint.from_text(note.text)
        if checkpoint.origin != origin:
            raise NoteVerificationError(
                f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}"
            )
        by_id = {int(k.key_id, 16): k for k in self.keys}
        for sig in good:
            key = by_id[sig.key_id]
            mark = key.retired_after.get(channel)
            if key.retired_at_ms is None or (mark and checkpoint.size <= mark.log_size):
                return checkpoint
        ids = ", ".join(f"{s.key_id:08x}" for s in good)
        raise NoteVerificationError(
            f"checkpoint of size {checkpoint.size} is signed only by retired key(s) {ids}, "
            "beyond the log size they were retired at: do not trust it"
        )


# -- in the store ------------------------------------------------------------------------------


async def load_history(store: BatchStore) -> KeyHistory:
    raw = await store.cursor(CURSOR)
    return KeyHistory() if raw is None else KeyHistory.from_json(raw)


async def _save(store: BatchStore, history: KeyHistory, now_ms: int) -> None:
    await store.set_cursor(CURSOR, json.dumps(history.to_json()), now_ms=now_ms)


async def ensure_current(store: BatchStore, identity: Identity, *, now_ms: int) -> KeyHistory:
    """Called when the trust path starts: ``identity`` must be the history's current key.

    An empty history starts with it (valid since the channel logs began). A
    retired key raises :class:`GatewayKeyRetired`, another key
    :class:`GatewayKeyUnknown`: the gateway never signs with a key the history
    does not name as current.
    """
    history = await load_history(store)
    pem = identity.certificate_pem.decode("ascii")
    if history.current is None:
        history = KeyHistory((GatewayKey(pem, identity.msp_id, valid_from_ms=0),))
        await _save(store, history, now_ms)
        return history
    found = history.find(pem)
    if found is None:
        raise GatewayKeyUnknown(
            f"the configured gateway certificate {identity.fingerprint[:16]}… is not the "
            f"current key {history.current.key_id} of the key history: run `anchorline "
            "gateway rotate-key` to rotate to it, or configure the current key"
        )
    if found is not history.current:
        raise GatewayKeyRetired(
            f"the configured gateway key {found.key_id} was retired at "
            f"{_iso(found.retired_at_ms or 0)}; configure the current key "
            f"{history.current.key_id} (see GET /gateway/keys)"
        )
    return history


async def rotate(store: BatchStore, new: Identity, *, now_ms: int) -> KeyHistory:
    """Retire the current key at ``now_ms`` (marking, per channel, the last batch it
    signed and the log size) and make ``new`` current. Stop the gateway first: a
    gateway still running on the old key would sign beyond the marks."""
    history = await load_history(store)
    pem = new.certificate_pem.decode("ascii")
    if history.find(pem) is not None:
        raise KeyHistoryError("that certificate is already in the key history: use a new key")
    marks: dict[str, Mark] = {}
    for channel in await store.channels():
        last = await store.last(channel)
        marks[channel] = Mark(last.number if last else 0, await store.log_size(channel))
    keys: Sequence[GatewayKey] = history.keys
    if history.current is not None:
        retired = dataclasses.replace(history.current, retired_at_ms=now_ms, retired_after=marks)
        keys = (*history.keys[:-1], retired)
    updated = KeyHistory((*keys, GatewayKey(pem, new.msp_id, valid_from_ms=now_ms)))
    await _save(store, updated, now_ms)
    return updated


@dataclasses.dataclass(frozen=True)
class AnchorPosition:
    """Where and when the ledger says a batch was anchored."""

    at: dt.datetime
    height: int


async def anchor_position(proof: EventProof, ledger: AnchorLedger) -> AnchorPosition | None:
    """The ledger's ``anchored_at`` (the anchor transaction's timestamp, endorsed by a
    majority of the orgs) and ``height`` of the proof's batch; None when the ledger has
    no such record or cannot be read (the ledger checks then report why)."""
    try:
        record = await ledger.get_batch(proof.batch.batch_id)
    except AnchorlineError:
        return None
    if record is None:
        return None
    try:
        at = dt.datetime.fromisoformat(str(record["anchored_at"]).replace("Z", "+00:00"))
        height = int(record["height"])
    except (KeyError, TypeError, ValueError):
        return None
    return AnchorPosition(at if at.tzinfo else at.replace(tzinfo=dt.UTC), height)
