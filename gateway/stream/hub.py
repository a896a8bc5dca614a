"""Connections, rooms and fan-out: the typed heart of the Socket.IO layer.

This module does not import python-socketio: the adapter in
:mod:`gateway.stream.sio` feeds it parsed packets and gives each connection a
way to write. The hub is transport only: what an emitted event must satisfy
is decided by :func:`gateway.events.intake.intake` (the connection is its
gate: joined, and allowed to emit by the authorizer's answer at join); how a
commit reaches a room's members is the :class:`~gateway.stream.fanout.FanOut`'s
(by default :class:`~gateway.stream.fanout.LocalFanOut`: each packet encoded
once, the same bytes written to every WebSocket, synchronously, with no task
per recipient).

Client → server events (all answer through the Socket.IO acknowledgement):

``event``   ``{id, channel, type, payload, client_ts, signature}`` →
            ``{id, seq, status: "pending"}``, ``{id, seq, status: "duplicate"}``
            or ``{id, error: {code, message}}``. Sent only after the commit.
``join``    ``{channel, after?}`` → catch-up ``event`` packets with
            ``seq > after`` in order, then ``{channel, joined: true, last_seq}``.
``leave``   ``{channel}`` → ``{channel, left: true}``.
``resume``  ``{channels: {name: last_seq}}`` → joins each (with catch-up) →
            ``{channels: {name: {joined, last_seq} | {error}}}``.
``refresh`` ``{token}`` → ``{expires_at}``: a fresh token of the same session
            keeps the connection open past the old token's expiry.

Server → client: ``event`` (a stored event, see ``StoredEvent.to_wire``),
``status`` (``{channel, seqs, status, tx_id, block_number}``), ``kicked``
(``{channel, code, message}``, access lost), ``slow_consumer`` (``{code:
AL1005, message}``, then the connection closes: the client read too slowly
and resumes from its last seq), ``session_expired``
(``{reason, code, message}``; reason ``expired``, ``revoked`` (logout) or
``certificate_revoked``, then the connection is closed), ``error``
(``{code, message, id?}`` for emits sent without acknowledgement).

Emits are answered in the order they were read (per connection), whether their
signatures are checked inline or, a loop turn's worth together, on the
:class:`~gateway.events.verifier.SignatureVerifier`'s worker process. Above
capacity an emit is refused (``Overloaded``) from its packet's head, before its
JSON is parsed (:meth:`Hub.dispatch_text`).

A revoked certificate (see :mod:`gateway.auth.revocation`) kicks every
connection of that identity through the fan-out seam, and its emits still
waiting for a commit are withdrawn and refused (AL1509). A session ended on
another process (a logout) kicks its connections here too: through the
fan-out's kick, or from the store's follower when no broker carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson

from gateway.auth.authorizer import Action, Authorizer
from gateway.auth.errors import AccessDenied, SessionRevoked
from gateway.auth.principal import Principal
from gateway.auth.sessions import SessionService
from gateway.clock import Clock, now_ms
from gateway.config import GatewaySettings
from gateway.errors import AnchorlineError, InvalidInput
from gateway.events.budget import EmitBudget
from gateway.events.errors import (
    DuplicateConflict,
    EmitRateLimited,
    MalformedEvent,
    NotJoined,
    Overloaded,
)
from gateway.events.intake import IntakeLimits, accept_signed, check_unsigned, emit_denied
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import AppendResult, SignedEvent, servable, valid_channel
from gateway.events.pipeline import Committed, EventPipeline
from gateway.events.publisher import StatusChange
from gateway.events.verifier import SignatureVerifier
from gateway.logs import log_context
from gateway.store.events import EventRepository
from gateway.stream.errors import SlowConsumer
from gateway.stream.fanout import FanOut, Kick, LocalFanOut, RoomPacket, select_fanout
from gateway.stream.frames import (
    EmitHead,
    IncomingEvent,
    Outgoing,
    ack_packet,
    emit_head,
    event_packet,
    event_packet_raw,
    parse_event_packet,
    refusal_packet,
)

log = logging.getLogger(__name__)

MAX_CHANNELS_PER_CONNECTION = 256
_SLOW_EVENTS = frozenset(("join", "leave", "resume", "refresh"))
# The longest a socket is left unread after an over-budget emit: well inside the
# ping timeout, so a slow budget (0.05/s) never costs the connection its pong.
_MAX_READ_HOLD_S = 1.0


def _error_body(exc: AnchorlineError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    # A refusal that says when to come back (Overloaded) carries it in the ack.
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        body["retry_after"] = retry_after
    return body


class Connection:
    """One connected client. ``write`` never blocks and never creates a task."""

    __slots__ = (
        "address",
        "buffering",
        "can_write",
        "channels",
        "closed",
        "eio_sid",
        "expires_ms",
        "fallback",
        "positions",
        "principal",
        "sid",
        "transport",
    )

    def __init__(
        self,
        eio_sid: str,
        sid: str,
        principal: Principal,
        address: str,
        fallback: Callable[[Connection, Outgoing], int],
    ) -> None:
        self.eio_sid = eio_sid
        self.sid = sid
        self.principal = principal
        self.address = address
        self.expires_ms = principal.expires_ms
        # Long-polling connections (and WebSockets not yet upgraded) go through
        # Engine.IO's own queue; upgraded WebSockets get bytes written directly.
        self.fallback = fallback
        self.transport: asyncio.WriteTransport | None = None
        self.channels: set[str] = set()
        self.can_write: dict[str, bool] = {}
        # Channel → live packets held back while that channel's catch-up is sent.
        self.buffering: dict[str, list[tuple[int, Outgoing]]] | None = None
        # Channel → the last seq this connection was sent, once a catch-up set it: the
        # fan-out skips what is not newer (behind a broker the store can be ahead of it).
        self.positions: dict[str, int] = {}
        self.closed = False

    def write(self, out: Outgoing) -> int:
        """Send ``out``; returns the bytes now waiting in the socket's buffer."""
        transport = self.transport
        if transport is not None:
            if transport.is_closing():
                self.closed = True
                return 0
            transport.write(out.frame)
            return transport.get_write_buffer_size()
        return self.fallback(self, out)

    def write_many(self, packets: Sequence[Outgoing], joined: bytes | None = None) -> int:
        """Send ``packets`` in order with one socket write (``joined``: their frames, joined)."""
        transport = self.transport
        if transport is not None:
            if transport.is_closing():
                self.closed = True
                return 0
            transport.write(joined if joined is not None else b"".join(p.frame for p in packets))
            return transport.get_write_buffer_size()
        backlog = 0
        for packet in packets:
            backlog = self.fallback(self, packet)
        return backlog

    def check_emit(self, principal: Principal, channel: str) -> None:
        """The intake's gate (:class:`~gateway.events.intake.EmitGate`): joined, and
        allowed to emit by the authorizer's answer at join (refreshed on invalidation)."""
        if channel not in self.channels:
            raise NotJoined(f"join channel {channel!r} before emitting to it")
        if not self.can_write.get(channel, False):
            raise emit_denied(principal, channel)


class Hub:
    """Owns connections and rooms; see the module docstring for the protocol."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        sessions: SessionService,
        authorizer: Authorizer,
        pipeline: EventPipeline,
        events: EventRepository,
        metrics: GatewayMetrics,
        limits: IntakeLimits | None = None,
        clock: Clock = now_ms,
    ) -> None:
        self._settings = settings
        self._limits = limits if limits is not None else IntakeLimits.from_settings(settings)
        self._sessions = sessions
        self._authorizer = authorizer
        self._pipeline = pipeline
        self._events = events
        self._metrics = metrics
        self._clock = clock
        # The pipeline's, shared with every other door (REST): one budget per identity.
        self._identity_budget = pipeline.identity_budget
        self._connection_budget = EmitBudget(
            settings.emit_connection_per_s, settings.emit_connection_burst, "connection"
        )
        # Step 3 of the intake, for the events of one loop turn at once, on another core.
        self._verifier = SignatureVerifier.from_settings(settings)
        pipeline.set_upstream(self._verifier)
        self._read_backlog_limit = settings.admission_max_read_backlog
        retry = settings.admission_retry_after_ms
        # Encoded once: the refusal of every emit read while this process is behind.
        self._behind_json = orjson.dumps(
            _error_body(
                Overloaded(
                    "the gateway is overloaded (your events wait unread behind earlier "
                    f"ones): retry after {retry} ms",
                    retry_after=retry,
                )
            )
        )
        # Emits refused from their head alone, before any parse (benchmarks, tests).
        self.shed = 0
        self.connections: dict[str, Connection] = {}
        self.rooms: dict[str, dict[str, Connection]] = {}
        self._closer: Callable[[Connection, bool], Coroutine[Any, Any, None]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks: dict[Connection, list[Outgoing]] = {}
        self._fanout: FanOut = select_fanout(
            settings.fanout,
            LocalFanOut(
                self.rooms,
                buffer_limit=settings.client_buffer_limit_bytes,
                held_limit=settings.client_buffer_limit_packets,
                metrics=metrics,
                on_slow=self._drop_slow,
                on_kick=self.apply_kick,
            ),
            redis_url=settings.redis_url,
            events=events,
        )
        pipeline.add_listener(self._broadcast_committed)
        authorizer.on_invalidate(self._on_invalidate)
        sessions.on_revocation(self._on_session_revoked)
        sessions.on_identity_revoked(self._on_identity_revoked)

    @property
    def verifier(self) -> SignatureVerifier:
        """Where the emits' signatures are checked (its counts, for benchmarks)."""
        return self._verifier

    async def drain(self) -> None:
        """Wait until every emit read so far is answered or queued for its commit, and
        committed (tests, benchmarks)."""
        await self._verifier.drain()
        await self._pipeline.drain()

    @property
    def fanout(self) -> FanOut:
        """How packets reach subscribers (the app starts and stops a broker's)."""
        return self._fanout

    # -- wiring from the adapter -----------------------------------------------------------

    def set_closer(self, closer: Callable[[Connection, bool], Coroutine[Any, Any, None]]) -> None:
        """How the hub disconnects a client: ``closer(conn, abort)`` (from the adapter)."""
        self._closer = closer

    async def connect(
        self,
        eio_sid: str,
        sid: str,
        auth: object,
        address: str,
        fallback: Callable[[Connection, Outgoing], int],
    ) -> Connection:
        """Authenticate a new connection from its Socket.IO auth payload ``{token}``.

        Raises an :class:`AuthError` subclass; the adapter refuses the
        connection with its code and message.
        """
        token = auth.get("token") if isinstance(auth, dict) else None
        principal = await self._sessions.authenticate(token)
        conn = Connection(eio_sid, sid, principal, address, fallback)
        self.connections[eio_sid] = conn
        self._metrics.connected_clients = len(self.connections)
        log.info(
            "connected %s of %s",
            principal.role,
            principal.msp_id,
            extra={
                "connection_id": sid,
                "session_id": principal.session_id,
                "client": address,
                "fingerprint": principal.fingerprint,
            },
        )
        return conn

    def set_transport(self, eio_sid: str, transport: asyncio.WriteTransport) -> None:
        """From now on write this connection's packets straight to ``transport``."""
        conn = self.connections.get(eio_sid)
        if conn is not None:
            conn.transport = transport

    def disconnected(self, eio_sid: str) -> None:
        conn = self.connections.pop(eio_sid, None)
        if conn is None:
            return
        conn.closed = True
        self._connection_budget.forget(eio_sid)
        for channel in conn.channels:
            room = self.rooms.get(channel)
            if room is not None:
                room.pop(eio_sid, None)
                if not room:
                    del self.rooms[channel]
        conn.channels.clear()
        self._metrics.connected_clients = len(self.connections)
        log.info(
            "disconnected",
            extra={"connection_id": conn.sid, "session_id": conn.principal.session_id},
        )

    def dispatch_text(self, eio_sid: str, data: str, received: float, unread: int = 0) -> float:
        """Handle one Socket.IO EVENT packet's text ``2[<ack id>][...]`` as read.

        ``unread`` is how many more messages of this connection were already read
        from its socket and wait behind this one. Above capacity an emit is refused
        here (:class:`Overloaded`, with ``retry_after``) before its JSON is parsed,
        when admission refuses or when ``unread`` reaches
        ``gateway.admission_max_read_backlog`` while admission's wait or lag rule
        trips (the gateway runs behind, and behind this sender most):
        such a refusal costs a few microseconds, so the excess is answered at once
        instead of waiting unread in the socket. Everything else goes to
        :meth:`dispatch`. Text that is no Socket.IO event is dropped (no ack id to
        answer).

        Returns how long, in seconds, the caller should leave this connection's
        socket unread: after an emit over its budget (AL1610), the ``retry_after``
        it was told (at most :data:`_MAX_READ_HOLD_S`). The sender's next messages
        would be refused too; unread, they cost nothing, and TCP's flow control
        slows the sender to its budget instead of the gateway answering every
        message of a flood (issue 19 item 5). Overloaded refusals hold nothing:
        a sender within its budget is not made to wait for the others' excess.
        """
        conn = self.connections.get(eio_sid)
        if conn is None or conn.closed:
            return 0.0
        head = emit_head(data)
        if head is not None:
            # A burst read at once is no overload by itself: only while the gateway
            # runs behind does a sender's read backlog mean the excess must go.
            if 0 < self._read_backlog_limit <= unread and self._pipeline.behind():
                self._shed(conn, head, Overloaded.code, self._behind_json)
                return 0.0
            try:
                self._admit(conn)
            except AnchorlineError as exc:
                self._shed(conn, head, exc.code, orjson.dumps(_error_body(exc)))
                if isinstance(exc, EmitRateLimited):
                    return min(float(exc.details["retry_after"]) / 1000, _MAX_READ_HOLD_S)
                return 0.0
        incoming = parse_event_packet(data)
        if incoming is not None:
            self.dispatch(eio_sid, incoming, received, admitted=head is not None)
        return 0.0

    def _admit(self, conn: Connection) -> None:
        """The emit door: the connection's budget, then the pipeline's (the identity's
        budget, then capacity, fair between identities); raises the refusal."""
        self._connection_budget.take(conn.eio_sid)
        self._pipeline.admit(conn.principal.fingerprint)

    def _shed(self, conn: Connection, head: EmitHead, code: str, error_json: bytes) -> None:
        """Refuse an emit from its head alone (see :meth:`dispatch_text`)."""
        self._metrics.reject(code)
        if code == Overloaded.code:
            self.shed += 1
        self._queue_ack(conn, refusal_packet(head, error_json))

    def dispatch(
        self, eio_sid: str, incoming: IncomingEvent, received: float, *, admitted: bool = False
    ) -> None:
        """Handle one client event; the hot path (``event``) runs inline, no task.

        ``admitted``: an emit that already passed the door (:meth:`dispatch_text`
        admitted it from its head), so it spends no budget twice."""
        conn = self.connections.get(eio_sid)
        if conn is None or conn.closed:
            return
        if incoming.refused is not None:
            # JSON the strict reader refused: answer with its code, never silence.
            # It spends budget like any emit, so garbage is no cheaper way to flood.
            refusal: AnchorlineError = incoming.refused
            if not admitted:
                try:
                    self._connection_budget.take(conn.eio_sid)
                    self._identity_budget.take(conn.principal.fingerprint)
                except EmitRateLimited as exc:
                    refusal = exc
            self._metrics.reject(refusal.code)
            self._refuse(conn, incoming.ack_id, None, refusal)
            return
        if incoming.name == "event":
            self._on_emit(conn, incoming, received, admitted)
        elif incoming.name in _SLOW_EVENTS:
            self._spawn(self._slow(conn, incoming))
        elif incoming.ack_id is not None:
            self._reply(
                conn,
                incoming.ack_id,
                {
                    "error": _error_body(
                        InvalidInput(
                            f"unknown event {incoming.name[:40]!r}: use event, join, "
                            "leave, resume or refresh"
                        )
                    )
                },
            )

    # -- emit: the fast path ---------------------------------------------------------------

    def _on_emit(
        self, conn: Connection, incoming: IncomingEvent, received: float, admitted: bool
    ) -> None:
        raw = incoming.args[0] if len(incoming.args) == 1 else None
        event_id = raw.get("id") if isinstance(raw, dict) else None
        shown_id = event_id if isinstance(event_id, str) and len(event_id) <= 128 else None
        try:
            # The door first: a flood is refused before it costs a signature check.
            if not admitted:
                self._admit(conn)
            if raw is None:
                raise MalformedEvent("emit exactly one event object")
            principal = conn.principal
            event = check_unsigned(principal, raw, self._limits, conn)
            ack_id = incoming.ack_id
            received_ms = self._clock()

            def checked(verified: bool) -> None:
                self._on_checked(conn, principal, event, verified, ack_id, received, received_ms)

            self._verifier.check(principal, event, checked)
        except AnchorlineError as exc:
            self._metrics.reject(exc.code)
            self._refuse(conn, incoming.ack_id, shown_id, exc)
        except Exception:  # a bug must not leave the sender waiting for its timeout
            log.exception("emit from %s failed", conn.sid)
            self._refuse(conn, incoming.ack_id, shown_id, AnchorlineError("internal error"))

    def _on_checked(
        self,
        conn: Connection,
        principal: Principal,
        event: SignedEvent,
        verified: bool,
        ack_id: int | None,
        received: float,
        received_ms: int,
    ) -> None:
        """An emit's signature was checked (in this turn, or a later one when checked on
        the worker): store it, or refuse it (AL1603)."""
        if conn.closed:
            # Gone, or kicked (revoked) while its signature was checked: nothing to
            # answer, and a revoked member's emit is not stored.
            return
        try:
            item = accept_signed(principal, event, verified, received_ms)
            accepted_id = event.id

            def done(result: AppendResult | AnchorlineError) -> None:
                self._emit_done(conn, ack_id, accepted_id, result, received)

            self._pipeline.submit(item, done, origin=conn)
        except AnchorlineError as exc:
            self._metrics.reject(exc.code)
            self._refuse(conn, ack_id, event.id, exc)
        except Exception:  # a bug must not leave the sender waiting for its timeout
            log.exception("emit from %s failed", conn.sid)
            self._refuse(conn, ack_id, event.id, AnchorlineError("internal error"))

    def _refuse(
        self, conn: Connection, ack_id: int | None, shown_id: str | None, exc: AnchorlineError
    ) -> None:
        """The refusal of an emit: its ack, or an ``error`` event when it asked for none."""
        body: dict[str, Any] = {"id": shown_id, "error": _error_body(exc)}
        if ack_id is not None:
            packet = ack_packet(ack_id, body)
        else:
            packet = event_packet("error", {**body["error"], "id": shown_id})
        if isinstance(exc, Overloaded):
            # Above capacity most emits are refused: they leave with the acks of
            # commits, one write per connection per loop turn, since a write each
            # would cost more than refusing saves.
            self._queue_ack(conn, packet)
        else:
            self._send(conn, packet)

    def _emit_done(
        self,
        conn: Connection,
        ack_id: int | None,
        event_id: str,
        result: AppendResult | AnchorlineError,
        received: float,
    ) -> None:
        if isinstance(result, AnchorlineError):
            body: dict[str, Any] = {"id": event_id, "error": _error_body(result)}
        elif result.conflict:
            body = {
                "id": event_id,
                "seq": result.stored.seq,
                "status": "duplicate",
                "error": _error_body(
                    DuplicateConflict("this id was already used for a different event")
                ),
            }
        else:
            body = {
                "id": event_id,
                "seq": result.stored.seq,
                "status": "duplicate" if result.duplicate else "pending",
            }
        if conn.closed:
            return
        if ack_id is not None:
            packet = ack_packet(ack_id, body)
        elif "error" in body:
            packet = event_packet("error", {**body["error"], "id": event_id})
        else:
            return
        self._queue_ack(conn, packet)
        self._metrics.ack_latency.observe(time.perf_counter() - received)

    def _queue_ack(self, conn: Connection, packet: Outgoing) -> None:
        # Acks of one commit (and refusals of one loop turn) leave together, one
        # write per connection, before the commit's broadcast (see _flush_acks).
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.setdefault(conn, []).append(packet)

    def _flush_acks(self) -> None:
        if not self._acks:
            return
        acks, self._acks = self._acks, {}
        limit = self._settings.client_buffer_limit_bytes
        for conn, packets in acks.items():
            if not conn.closed and conn.write_many(packets) > limit:
                self._drop_slow(conn)

    def _broadcast_committed(self, committed: Sequence[Committed]) -> None:
        """Pipeline listener: fan a commit's new events out, senders excluded.

        Acks go first. Each event is encoded once; all of a commit's events
        for one room leave in one write per recipient.
        """
        self._flush_acks()
        by_channel: dict[str, list[RoomPacket]] = {}
        for item in committed:
            event = item.event
            if not self._fanout.wants(event.channel):
                continue
            packet = event_packet_raw("event", orjson.dumps(event.to_wire()))
            by_channel.setdefault(event.channel, []).append(
                RoomPacket(event.seq, packet, item.origin)
            )
        for channel, packets in by_channel.items():
            self._fanout.deliver(channel, packets)

    def _drop_slow(self, conn: Connection) -> None:
        """Disconnect a client whose unsent output passed the bound, saying why.

        The ``slow_consumer`` notice (``{code: AL1005, message}``, see
        :class:`SlowConsumer`) is written after everything already buffered,
        then the adapter closes the connection, flushing for at most its grace
        period. The connection leaves its rooms at once, so nothing more is
        written to it and its memory stays at the bound; the client resumes
        from the last seq it received with ``resume``.
        """
        if conn.closed:
            return
        self._metrics.slow_consumer_disconnects += 1
        log.info("disconnecting slow consumer %s (%s)", conn.sid, conn.principal.fingerprint)
        notice = SlowConsumer(
            "you did not read fast enough: reconnect and resume from the last seq you received"
        )
        conn.write(event_packet("slow_consumer", _error_body(notice)))
        self._close(conn, abort=True)
        self.disconnected(conn.eio_sid)

    def publish_status(self, change: StatusChange) -> None:
        """Push a trust-path status change to the channel's subscribers."""
        if not self._fanout.wants(change.channel):
            return
        packet = event_packet(
            "status",
            {
                "channel": change.channel,
                "seqs": list(change.seqs),
                "status": change.status,
                "tx_id": change.tx_id,
                "block_number": change.block_number,
            },
        )
        self._fanout.deliver(change.channel, [RoomPacket(-1, packet, None)])

    # -- join, leave, resume, refresh ------------------------------------------------------

    async def _slow(self, conn: Connection, incoming: IncomingEvent) -> None:
        with log_context(connection_id=conn.sid, session_id=conn.principal.session_id):
            await self._slow_in_context(conn, incoming)

    async def _slow_in_context(self, conn: Connection, incoming: IncomingEvent) -> None:
        arg = incoming.args[0] if incoming.args else None
        try:
            if incoming.name == "join":
                body: dict[str, Any] = await self._join_request(conn, arg)
            elif incoming.name == "leave":
                body = self._leave_request(conn, arg)
            elif incoming.name == "resume":
                body = await self._resume(conn, arg)
            else:
                body = await self._refresh(conn, arg)
        except AnchorlineError as exc:
            body = {"error": _error_body(exc)}
        except Exception:  # answer instead of leaving the client waiting
            log.exception("%s from %s failed", incoming.name, conn.sid)
            body = {"error": {"code": "AL1000", "message": "internal error; see the gateway log"}}
        if incoming.ack_id is not None and not conn.closed:
            self._reply(conn, incoming.ack_id, body)

    async def _join_request(self, conn: Connection, arg: object) -> dict[str, Any]:
        if not isinstance(arg, dict):
            raise InvalidInput("join takes {channel, after?}")
        after = arg.get("after")
        if after is not None and (
            not isinstance(after, int) or isinstance(after, bool) or after < 0
        ):
            raise InvalidInput("after must be a non-negative integer sequence number")
        return await self._join(conn, arg.get("channel"), after)

    async def _join(self, conn: Connection, channel: object, after: int | None) -> dict[str, Any]:
        if not valid_channel(channel):
            raise InvalidInput("channel must be 1-64 characters of A-Z a-z 0-9 . _ -")
        assert isinstance(channel, str)
        if channel not in conn.channels and len(conn.channels) >= MAX_CHANNELS_PER_CONNECTION:
            raise InvalidInput(f"at most {MAX_CHANNELS_PER_CONNECTION} channels per connection")
        principal = conn.principal
        if not await self._authorizer.allowed(principal, channel, Action.READ):
            raise AccessDenied(
                f"{principal.role} of {principal.msp_id} may not join channel {channel!r}"
            )
        can_write = await self._authorizer.allowed(principal, channel, Action.WRITE)
        if conn.closed:
            return {"channel": channel, "joined": False}
        conn.can_write[channel] = can_write
        if after is None:
            self._enter(conn, channel)
            last = await self._events.last_seq(channel)
            return {"channel": channel, "joined": True, "last_seq": last, "can_emit": can_write}
        # Live events go to a buffer until the stored ones are sent, so the
        # client sees every seq after `after` exactly once and in order.
        if conn.buffering is None:
            conn.buffering = {}
        conn.buffering[channel] = []
        self._enter(conn, channel)
        last = after
        try:
            while not conn.closed:
                page = await self._events.after(channel, last, self._settings.catchup_page)
                if page:
                    statuses = await self._events.statuses(channel, [e.seq for e in page])
                    # The page's length decides whether to fetch another (below):
                    # a bad row is left out of what is sent, not of the page.
                    for event in servable(page):
                        state = statuses.get(event.seq, {}).get("status", "pending")
                        self._send(
                            conn, event_packet_raw("event", orjson.dumps(event.to_wire(state)))
                        )
                        last = event.seq
                    last = max(last, page[-1].seq)
                if len(page) < self._settings.catchup_page:
                    break
                await self._drained(conn)
        finally:
            held = conn.buffering.pop(channel, []) if conn.buffering is not None else []
            if conn.buffering is not None and not conn.buffering:
                conn.buffering = None
            for seq, packet in held:
                if seq > last or seq < 0:
                    self._send(conn, packet)
                    last = max(last, seq)
            conn.positions[channel] = last
        return {"channel": channel, "joined": True, "last_seq": last, "can_emit": can_write}

    async def _drained(self, conn: Connection) -> None:
        """Pause a long catch-up while the client's socket buffer is over half the limit."""
        half = self._settings.client_buffer_limit_bytes // 2
        transport = conn.transport
        for _ in range(3000):  # at most ~30 s, then the slow-consumer rule decides
            if transport is None or conn.closed or transport.get_write_buffer_size() <= half:
                return
            await asyncio.sleep(0.01)

    def _enter(self, conn: Connection, channel: str) -> None:
        conn.channels.add(channel)
        self.rooms.setdefault(channel, {})[conn.eio_sid] = conn

    def _remove(self, conn: Connection, channel: str) -> None:
        conn.channels.discard(channel)
        conn.positions.pop(channel, None)
        conn.can_write.pop(channel, None)
        room = self.rooms.get(channel)
        if room is not None:
            room.pop(conn.eio_sid, None)
            if not room:
                del self.rooms[channel]

    def _leave_request(self, conn: Connection, arg: object) -> dict[str, Any]:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        if not valid_channel(channel):
            raise InvalidInput("leave takes {channel}")
        assert isinstance(channel, str)
        self._remove(conn, channel)
        return {"channel": channel, "left": True}

    async def _resume(self, conn: Connection, arg: object) -> dict[str, Any]:
        channels = arg.get("channels") if isinstance(arg, dict) else None
        if not isinstance(channels, dict) or len(channels) > MAX_CHANNELS_PER_CONNECTION:
            raise InvalidInput("resume takes {channels: {name: last_seq}}")
        out: dict[str, Any] = {}
        for name, last in channels.items():
            try:
                if last is not None and (
                    not isinstance(last, int) or isinstance(last, bool) or last < 0
                ):
                    raise InvalidInput("last seen seq must be a non-negative integer")
                out[name] = await self._join(conn, name, last if last is not None else 0)
            except AnchorlineError as exc:
                out[name] = {"error": _error_body(exc)}
        return {"channels": out}

    async def _refresh(self, conn: Connection, arg: object) -> dict[str, Any]:
        token = arg.get("token") if isinstance(arg, dict) else None
        principal = await self._sessions.authenticate(token)
        if principal.fingerprint != conn.principal.fingerprint:
            raise AccessDenied("the new token belongs to another identity")
        conn.principal = principal
        conn.expires_ms = principal.expires_ms
        return {"expires_at": principal.expires_ms}

    # -- invalidation, revocation, expiry --------------------------------------------------

    async def _on_invalidate(self, fingerprint: str | None, channel: str | None) -> None:
        for conn in list(self.connections.values()):
            if fingerprint is not None and conn.principal.fingerprint != fingerprint:
                continue
            for joined in list(conn.channels):
                if channel is not None and joined != channel:
                    continue
                if not await self._authorizer.allowed(conn.principal, joined, Action.READ):
                    self._remove(conn, joined)
                    self._send(
                        conn,
                        event_packet(
                            "kicked",
                            {
                                "channel": joined,
                                **_error_body(AccessDenied("access to this channel was withdrawn")),
                            },
                        ),
                    )
                else:
                    conn.can_write[joined] = await self._authorizer.allowed(
                        conn.principal, joined, Action.WRITE
                    )

    def _on_session_revoked(self, session_id: str, here: bool) -> None:
        ended = SessionRevoked("session was ended: log in again")
        kick = Kick("revoked", ended.code, ended.message, session_id=session_id)
        if here:
            self._fanout.kick(kick)
        else:
            # Learned from the store: every process follows it, so none publishes it.
            self.apply_kick(kick)

    def _on_identity_revoked(self, fingerprint: str, message: str) -> None:
        self._fanout.kick(
            Kick("certificate_revoked", SessionRevoked.code, message, fingerprint=fingerprint)
        )

    def apply_kick(self, kick: Kick) -> int:
        """End this process's connections that ``kick`` names (the fan-out calls it):
        ``session_expired`` then disconnect; their emits not yet committed are refused.
        Returns how many connections were kicked."""
        if kick.session_id is not None:
            # A kick from another process (the fan-out) ends the session's tokens here too.
            self._sessions.end_elsewhere(kick.session_id, notify=False)
            targets = [
                c for c in self.connections.values() if c.principal.session_id == kick.session_id
            ]
        elif kick.fingerprint is not None:
            targets = [
                c for c in self.connections.values() if c.principal.fingerprint == kick.fingerprint
            ]
        else:
            return 0
        body = {"reason": kick.reason, "code": kick.code, "message": kick.message}
        for conn in targets:
            log.info(
                "kicked: %s",
                kick.reason,
                extra={"connection_id": conn.sid, "session_id": conn.principal.session_id},
            )
            self._send(conn, event_packet("session_expired", body))
            self._close(conn)
        refusal = SessionRevoked(kick.message)
        if kick.fingerprint is not None and kick.session_id is None:
            fingerprint = kick.fingerprint
            self._pipeline.withdraw(lambda item, _origin: item.signer == fingerprint, refusal)
        elif targets:
            origins = {id(c) for c in targets}
            self._pipeline.withdraw(lambda _item, origin: id(origin) in origins, refusal)
        return len(targets)

    def expire_sessions(self) -> int:
        """Disconnect connections whose token expired without a refresh; returns how many."""
        now = self._clock()
        expired = [c for c in self.connections.values() if c.expires_ms <= now and not c.closed]
        for conn in expired:
            self._send(conn, event_packet("session_expired", {"reason": "expired"}))
            self._close(conn)
        return len(expired)

    async def run_expiry(self, period_s: float = 1.0) -> None:
        """Background loop: :meth:`expire_sessions` every ``period_s``, old challenges purged."""
        previous = self._metrics.events_accepted
        ticks = 0
        while True:
            await asyncio.sleep(period_s)
            self.expire_sessions()
            ticks += 1
            if ticks % 60 == 0:
                try:
                    await self._sessions.purge_challenges()
                except Exception:  # housekeeping must not stop the expiry loop
                    log.exception("purging expired challenges failed")
            accepted = self._metrics.events_accepted
            self._metrics.events_per_second = (accepted - previous) / period_s
            previous = accepted

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, conn: Connection, packet: Outgoing) -> None:
        if not conn.closed and conn.write(packet) > self._settings.client_buffer_limit_bytes:
            self._drop_slow(conn)

    def _reply(self, conn: Connection, ack_id: int, body: Any) -> None:
        self._send(conn, ack_packet(ack_id, body))

    def _close(self, conn: Connection, abort: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        if self._closer is not None:
            self._spawn(self._closer(conn, abort))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Answer the emits whose signatures are being checked, then cancel the hub's own
        background work (join catch-ups, disconnects)."""
        await self._verifier.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


__all__ = ["Connection", "Hub"]
