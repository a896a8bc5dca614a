"""The auditor's checks against the ledger: one proof (``anchorline verify``) and a whole
channel against the gateway's store (``anchorline audit``).

:func:`verify_on_ledger` is step 11 of docs/proof-format.md: through the
auditor's own connection it reads the anchored record, compares every signed
field and the signature, checks that the anchoring transaction committed
VALID in the block the proof names, has the chaincode recompute the inclusion,
and walks the channel's chain from its first batch to this one, checking each
``prev_root`` link. :func:`audit_channel` walks the whole anchored chain and
compares each batch with the store: events missing, altered (their leaf no
longer leads to the anchored root), batches missing from the store, batches
or events never anchored, and chain links that do not hold.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from gateway.anchoring.leaf import leaf_hash_from_canonical
from gateway.anchoring.ledger import AnchorLedger
from gateway.anchoring.outbox import BatchStore, StoredBatch
from gateway.anchoring.proof import Check, EventProof
from gateway.errors import AnchorlineError
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.tree import root as merkle_root
from gateway.store.events import EventRepository

ZERO_HEX = "0" * 64
_PAGE = 100


def _same_prev(a: str, b: str) -> bool:
    return (a or ZERO_HEX) == (b or ZERO_HEX)


async def chain(
    ledger: AnchorLedger, channel: str, *, upto_height: int | None = None
) -> list[dict[str, Any]]:
    """The channel's anchored batch records, height 0 first (up to ``upto_height``)."""
    out: list[dict[str, Any]] = []
    start: int | None = 0
    while start is not None:
        limit = _PAGE if upto_height is None else max(1, min(_PAGE, upto_height + 1 - start))
        page = await ledger.list_batches(channel, start, limit)
        out.extend(page.get("batches", []))
        start = page.get("next")
        if upto_height is not None and len(out) > upto_height:
            break
    return out


def chain_problems(records: list[dict[str, Any]]) -> list[str]:
    """Where the anchored chain does not link: heights, prev_root, seq continuity."""
    problems = []
    prev: dict[str, Any] | None = None
    for i, rec in enumerate(records):
        if rec.get("height") != i:
            problems.append(f"batch {rec.get('batch_id')} has height {rec.get('height')}, not {i}")
        if prev is None:
            if not _same_prev(str(rec.get("prev_root", "")), ZERO_HEX):
                problems.append(f"first batch {rec.get('batch_id')} does not start the chain")
        else:
            if rec.get("prev_root") != prev.get("root"):
                problems.append(
                    f"batch {rec.get('batch_id')} links to {rec.get('prev_root')}, not to the "
                    f"root {prev.get('root')} of {prev.get('batch_id')}"
                )
            if rec.get("first_seq") != int(prev.get("last_seq", -2)) + 1:
                problems.append(
                    f"batch {rec.get('batch_id')} starts at seq {rec.get('first_seq')}, not "
                    f"{int(prev.get('last_seq', -2)) + 1}"
                )
        prev = rec
    return problems


async def verify_on_ledger(proof: EventProof, ledger: AnchorLedger) -> list[Check]:
    """The ledger checks of one proof (see the module docstring); each is reported."""
    checks: list[Check] = []
    batch, anchor = proof.batch, proof.anchor
    if anchor is None or anchor.block_number is None:
        return [Check("ledger-anchor", False, "the proof names no committed anchor transaction")]
    if anchor.fabric_channel != ledger.fabric_channel or anchor.chaincode != ledger.chaincode:
        checks.append(
            Check(
                "ledger-target",
                False,
                f"the proof is anchored in {anchor.fabric_channel}/{anchor.chaincode}, this "
                f"connection reads {ledger.fabric_channel}/{ledger.chaincode}",
            )
        )
        return checks
    try:
        record = await ledger.get_batch(batch.batch_id)
    except AnchorlineError as exc:
        return [Check("ledger-record", False, f"cannot read batch {batch.batch_id}: {exc}")]
    if record is None:
        return [Check("ledger-record", False, f"batch {batch.batch_id} is not anchored")]
    mismatches = [
        name
        for name, want in (
            ("channel", batch.channel),
            ("root", batch.root.hex()),
            ("leaf_count", batch.leaf_count),
            ("first_seq", batch.first_seq),
            ("last_seq", batch.last_seq),
            ("signature", base64.b64encode(batch.signature).decode("ascii")),
        )
        if record.get(name) != want
    ]
    if not _same_prev(str(record.get("prev_root", "")), batch.prev_root.hex()):
        mismatches.append("prev_root")
    checks.append(
        Check(
            "ledger-record",
            not mismatches,
            f"batch {batch.batch_id} is anchored with root {record.get('root')} at height "
            f"{record.get('height')} by {record.get('submitter', {}).get('msp_id')}"
            if not mismatches
            else f"the anchored batch {batch.batch_id} differs in: {', '.join(mismatches)}",
        )
    )
    tx_ok = record.get("tx_id") == anchor.tx_id
    checks.append(
        Check(
            "ledger-transaction",
            tx_ok,
            f"anchored by transaction {anchor.tx_id}"
            if tx_ok
            else f"anchored by transaction {record.get('tx_id')}, not {anchor.tx_id}",
        )
    )
    try:
        outcome = await ledger.commit_status(anchor.tx_id)
    except AnchorlineError as exc:
        checks.append(Check("ledger-block", False, f"no commit status for {anchor.tx_id}: {exc}"))
    else:
        block_ok = outcome.valid and outcome.block_number == anchor.block_number
        checks.append(
            Check(
                "ledger-block",
                block_ok,
                f"committed {outcome.code_name} in block {outcome.block_number}"
                + ("" if block_ok else f" (the proof says VALID in block {anchor.block_number})"),
            )
        )
    try:
        answer = await ledger.verify_inclusion(
            batch.batch_id,
            proof.leaf_hash.hex(),
            proof.inclusion.index,
            [s.hex() for s in proof.inclusion.siblings],
        )
    except AnchorlineError as exc:
        checks.append(Check("ledger-inclusion", False, f"VerifyInclusion failed: {exc}"))
    else:
        included = bool(answer.get("included"))
        checks.append(
            Check(
                "ledger-inclusion",
                included,
                "the chaincode recomputes the anchored root from the leaf and its path"
                if included
                else f"the chaincode does not include the leaf: {answer.get('reason')}",
            )
        )
    height = record.get("height")
    if not isinstance(height, int):
        checks.append(Check("ledger-chain", False, "the anchored record has no height"))
        return checks
    try:
        records = await chain(ledger, batch.channel, upto_height=height)
    except AnchorlineError as exc:
        checks.append(Check("ledger-chain", False, f"cannot list the chain: {exc}"))
        return checks
    problems = chain_problems(records[: height + 1])
    if len(records) <= height or records[height].get("batch_id") != batch.batch_id:
        problems.append(f"the chain has no {batch.batch_id} at height {height}")
    checks.append(
        Check(
            "ledger-chain",
            not problems,
            f"{height + 1} batch(es) link from the channel's first batch to this one"
            if not problems
            else "; ".join(problems[:5]),
        )
    )
    return checks


@dataclasses.dataclass
class AuditReport:
    channel: str
    anchored_batches: int = 0
    checked_events: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    missing_events: list[int] = dataclasses.field(default_factory=list)
    altered_events: list[int] = dataclasses.field(default_factory=list)
    missing_batches: list[str] = dataclasses.field(default_factory=list)
    unanchored_batches: list[str] = dataclasses.field(default_factory=list)
    unanchored_events: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.problems
            or self.missing_events
            or self.altered_events
            or self.missing_batches
            or self.unanchored_batches
        )

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}

    def summary(self) -> str:
        lines = [
            f"channel {self.channel}: {self.anchored_batches} anchored batch(es), "
            f"{self.checked_events} event(s) checked"
        ]
        if self.missing_batches:
            lines.append(
                "MISSING from the store (anchored on the ledger): "
                + ", ".join(self.missing_batches[:20])
            )
        if self.missing_events:
            lines.append(f"MISSING events (seq): {_ranges(self.missing_events)}")
        if self.altered_events:
            lines.append(f"ALTERED events (seq): {_ranges(self.altered_events)}")
        if self.unanchored_batches:
            lines.append("UNANCHORED batches: " + ", ".join(self.unanchored_batches[:20]))
        if self.unanchored_events:
            lines.append(
                f"pending (not yet in an anchored batch): {self.unanchored_events} event(s)"
            )
        lines += [f"PROBLEM {p}" for p in self.problems[:50]]
        lines.append("AUDIT OK" if self.ok else "AUDIT FAILED")
        return "\n".join(lines)


def _ranges(seqs: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3, 7"``."""
    parts: list[str] = []
    ordered = sorted(seqs)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts[:50]) + (" …" if len(parts) > 50 else "")


async def _event_leaves(
    events: EventRepository, channel: str, first: int, last: int
) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    after = first - 1
    while after < last:
        page = await events.after(channel, after, min(1000, last - after))
        if not page:
            break
        for ev in page:
            if ev.seq > last:
                break
            out[ev.seq] = leaf_hash_from_canonical(
                ev.canonical, seq=ev.seq, signer=ev.signer, signature=ev.signature
            )
        after = page[-1].seq
    return out


async def audit_channel(
    channel: str, store: BatchStore, events: EventRepository, ledger: AnchorLedger
) -> AuditReport:
    """Compare the anchored chain of ``channel`` with the gateway's store."""
    report = AuditReport(channel)
    records = await chain(ledger, channel)
    report.anchored_batches = len(records)
    report.problems.extend(chain_problems(records))
    stored = {b.batch_id: b for b in await _all_batches(store, channel)}
    anchored_ids = set()
    for rec in records:
        batch_id = str(rec.get("batch_id"))
        anchored_ids.add(batch_id)
        first, last = int(rec["first_seq"]), int(rec["last_seq"])
        leaves = await _event_leaves(events, channel, first, last)
        report.checked_events += len(leaves)
        missing = [s for s in range(first, last + 1) if s not in leaves]
        report.missing_events.extend(missing)
        local = stored.get(batch_id)
        if local is None:
            report.missing_batches.append(f"{batch_id} (seq {first}-{last})")
        elif local.root.hex() != rec.get("root"):
            report.problems.append(
                f"store batch {batch_id} has root {local.root.hex()}, the ledger {rec.get('root')}"
            )
        if missing:
            continue
        ordered = [leaves[s] for s in range(first, last + 1)]
        if merkle_root(RFC6962_SHA256, ordered).hex() == rec.get("root"):
            continue
        altered = await _altered(store, local, ordered, first)
        if altered:
            report.altered_events.extend(altered)
        else:
            report.problems.append(
                f"the events of {batch_id} (seq {first}-{last}) do not lead to its anchored "
                "root, and the store keeps no leaves to say which changed"
            )
            report.altered_events.extend(range(first, last + 1))
    for batch_id, local in stored.items():
        if batch_id not in anchored_ids:
            report.unanchored_batches.append(
                f"{batch_id} (seq {local.first_seq}-{local.last_seq}, state {local.state})"
            )
    top = await store.last_event_seq(channel)
    anchored_top = int(records[-1]["last_seq"]) if records else 0
    report.unanchored_events = max(0, top - anchored_top)
    return report


async def _all_batches(store: BatchStore, channel: str) -> list[StoredBatch]:
    out: list[StoredBatch] = []
    after = 0
    while True:
        page = await store.listing(channel, after_number=after, limit=1000)
        if not page:
            return out
        out.extend(page)
        after = page[-1].number


async def _altered(
    store: BatchStore, local: StoredBatch | None, leaves: list[bytes], first: int
) -> list[int]:
    """Seqs whose leaf differs from the one recorded when the batch was cut."""
    if local is None:
        return []
    try:
        recorded = await store.leaves(local)
    except AnchorlineError:
        return []
    if merkle_root(RFC6962_SHA256, recorded) != local.root:
        return []
    return [first + i for i, (a, b) in enumerate(zip(recorded, leaves, strict=True)) if a != b]


def report_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), indent=2)
