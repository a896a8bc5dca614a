"""Step 3 of the intake (the signature) for many events at once, on another core.

Checking an ECDSA P-256 signature is about half the CPU an acknowledged event
costs. :class:`SignatureVerifier` takes the events the hub read in one loop
turn and checks them together in a worker process (``python -m
gateway.events.verifier``, fed through its stdin and stdout: one write and
one read per batch, not per event), while the loop goes on parsing, storing
and fanning out. A process, not a thread: a thread in this process needs the
GIL back after every single check, and with the loop holding it that made
the loop and the checks slower together than the loop alone (measured, see
docs/overload.md).

What callers may rely on:

- every event given to :meth:`SignatureVerifier.check` gets exactly one answer
  (``then(verified)``), with the same rule as the inline path
  (:func:`gateway.events.intake.signature_ok`, low-S and high-S alike);
- answers come in the order of the calls, across batches: a batch goes
  inline only when nothing is in flight, and batches leave the worker in order;
- a batch smaller than ``min_batch`` with nothing in flight is checked inline
  (a lone event would wait longer for the round trip than for its check);
- until the worker is up, and after it dies (its batches in flight are then
  checked inline, and a new one is started at most every few seconds), every
  check runs inline: never slower to answer than without the worker;
- :meth:`check` raises :class:`~gateway.events.errors.Overloaded` when
  ``max_pending`` events already wait for an answer (a bound on memory).

With ``offload`` off (or a single CPU) every check runs inline, synchronously,
inside :meth:`check`, as before this module existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.events.errors import Overloaded
from gateway.identity.signing import verify

if TYPE_CHECKING:
    from gateway.auth.principal import Principal
    from gateway.config import GatewaySettings
    from gateway.events.model import SignedEvent

log = logging.getLogger(__name__)

Answer = Callable[[bool], None]

_LEN: Final = struct.Struct("!I")
_ITEM: Final = struct.Struct("!HIH")  # key, message and signature lengths
_CPU: Final = struct.Struct("!d")  # a reply's first bytes: the worker's CPU seconds on it
_RESTART_AFTER_S: Final = 5.0
_CLOSE_WAIT_S: Final = 2.0
_ROOT: Final = str(Path(__file__).resolve().parents[2])


class SignatureVerifier:
    """Checks event signatures in batches, one per loop turn, in a worker process."""

    __slots__ = (
        "_closed",
        "_idle",
        "_inflight",
        "_inflight_events",
        "_inflight_since",
        "_keys",
        "_max_pending",
        "_min_batch",
        "_offload",
        "_pending",
        "_pending_since",
        "_retry_at",
        "_spawned",
        "_starting",
        "_worker",
        "inline_events",
        "offloaded_events",
        "worker_cpu_s",
    )

    def __init__(self, *, offload: bool, min_batch: int = 2, max_pending: int = 16384) -> None:
        self._offload = offload
        self._min_batch = max(1, min_batch)
        self._max_pending = max(1, max_pending)
        self._pending: list[tuple[Principal, SignedEvent, Answer]] = []
        self._inflight: deque[list[tuple[Principal, SignedEvent, Answer]]] = deque()
        self._inflight_events = 0
        # When each batch in flight, and the oldest pending event, were given (for
        # admission: an event waiting for its check waits for its ack as well).
        self._inflight_since: deque[float] = deque()
        self._pending_since = 0.0
        self._worker: _Worker | None = None
        # Every worker process started and not yet reaped: close() waits for them all.
        self._spawned: set[_Worker] = set()
        self._starting: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._closed = False
        self._idle = asyncio.Event()
        # Fingerprint → the certificate key as DER, encoded once per identity.
        self._keys: dict[str, bytes] = {}
        # Events checked inline and in the worker so far (benchmarks, tests).
        self.inline_events = 0
        self.offloaded_events = 0
        # CPU seconds the worker process spent on them (not in this process's own CPU).
        self.worker_cpu_s = 0.0

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SignatureVerifier:
        """``gateway.verify_offload`` ("process"; "off"; "auto": "process" when this
        process may run on two CPUs or more, since on one the worker would only take
        turns with the loop) and ``gateway.verify_offload_min_batch``."""
        mode = settings.verify_offload
        offload = len(os.sched_getaffinity(0)) >= 2 if mode == "auto" else mode == "process"
        return cls(offload=offload, min_batch=settings.verify_offload_min_batch)

    @property
    def offload(self) -> bool:
        """Whether batches go to the worker process."""
        return self._offload

    @property
    def waiting(self) -> int:
        """Events given to :meth:`check` and not answered yet."""
        return len(self._pending) + self._inflight_events

    def oldest_wait_s(self) -> float:
        """How long the oldest event still waiting for its answer has waited (0: none)."""
        if self._inflight_since:
            since = self._inflight_since[0]
        elif self._pending:
            since = self._pending_since
        else:
            return 0.0
        return time.perf_counter() - since

    def check(self, principal: Principal, event: SignedEvent, then: Answer) -> None:
        """Check ``event``'s signature against ``principal``'s key; ``then(verified)``
        is called once, later in this loop turn or a following one (at once when
        offloading is off). Raises :class:`Overloaded` when too many wait."""
        if not self._offload or self._closed:
            self.inline_events += 1
            then(_inline_ok(principal, event))
            return
        if self.waiting >= self._max_pending:
            raise Overloaded(
                f"{self.waiting} events wait for their signature check: retry after 100 ms",
                retry_after=100,
            )
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
            self._pending_since = time.perf_counter()
        self._pending.append((principal, event, then))

    async def drain(self) -> None:
        """Wait until every event given so far has its answer (tests, shutdown)."""
        while self.waiting:
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Answer what waits (in the worker for at most a few seconds, inline after),
        then stop the worker. Later checks run inline."""
        if self._closed:
            return
        self._flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), _CLOSE_WAIT_S)
        self._closed = True
        worker = self._lost("the gateway is stopping")
        if worker is not None:
            await worker.wait_closed()
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        # Reaped, each of them (one that died earlier too): no process is left behind.
        for spawned in list(self._spawned):
            spawned.stop()
            await spawned.wait_closed()
        self._spawned.clear()

    # -- batches -------------------------------------------------------------------------

    def _settle(self) -> None:
        if not self.waiting:
            self._idle.set()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        worker = self._worker
        # In flight implies a ready worker (_lost empties it), so inline never overtakes.
        if worker is None or (not self._inflight and len(batch) < self._min_batch):
            if worker is None and len(batch) >= self._min_batch:
                self._start_worker()
            self._answer_inline(batch)
            self._settle()
            return
        self._inflight.append(batch)
        self._inflight_since.append(self._pending_since)
        self._inflight_events += len(batch)
        self.offloaded_events += len(batch)
        worker.send(self._encode(batch))

    def _encode(self, batch: list[tuple[Principal, SignedEvent, Answer]]) -> bytes:
        parts = [b""]
        for principal, event, _ in batch:
            key = self._keys.get(principal.fingerprint)
            if key is None:
                if len(self._keys) >= 65536:  # identities come and go: bound the cache
                    self._keys.clear()
                key = self._keys[principal.fingerprint] = _der(principal)
            parts.append(_ITEM.pack(len(key), len(event.canonical), len(event.signature)))
            parts.extend((key, event.canonical, event.signature))
        body = b"".join(parts)
        return _LEN.pack(len(body)) + body

    def _answered(self, reply: bytes) -> None:
        batch = self._inflight.popleft()
        self._inflight_since.popleft()
        self.worker_cpu_s += _CPU.unpack_from(reply)[0]
        verdicts = reply[_CPU.size :]
        self._inflight_events -= len(batch)
        if len(verdicts) != len(batch):  # a worker out of step cannot be trusted: redo
            log.error("signature worker answered %d of %d checks", len(verdicts), len(batch))
            self._answer_inline(batch)
        else:
            for (_, _, then), verdict in zip(batch, verdicts, strict=True):
                _safe(then, verdict == 1)
        self._settle()

    def _answer_inline(self, batch: list[tuple[Principal, SignedEvent, Answer]]) -> None:
        self.inline_events += len(batch)
        for principal, event, then in batch:
            _safe(then, _inline_ok(principal, event))

    # -- the worker ----------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._starting is not None or self._closed or time.monotonic() < self._retry_at:
            return
        self._starting = asyncio.get_running_loop().create_task(
            self._spawn(), name="signature-worker"
        )

    async def _spawn(self) -> None:
        proc: asyncio.subprocess.Process | None = None
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # nothing from the environment changes what the worker runs
                "-c",
                f"import sys; sys.path.insert(0, {_ROOT!r}); "
                "from gateway.events.verifier import serve; serve()",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdin is not None and proc.stdout is not None
            # (Those reaped already are dropped: a worker restarts at most every few s.)
            self._spawned = {w for w in self._spawned if w.running}
            self._spawned.add(_Worker(proc))
            hello = await asyncio.wait_for(proc.stdout.readexactly(_LEN.size), 30)
            if _LEN.unpack(hello)[0] != 0:
                raise RuntimeError("unexpected greeting")
        except (Exception, asyncio.CancelledError) as exc:
            self._retry_at = time.monotonic() + _RESTART_AFTER_S
            self._starting = None
            if proc is not None:  # started, but not usable: do not leave it behind
                worker = _Worker(proc)
                worker.stop()
                await asyncio.shield(worker.wait_closed())
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("signature worker did not start (%s): checking inline", exc)
            return
        worker = _Worker(proc)
        self._worker = worker
        try:
            while True:
                size = _LEN.unpack(await proc.stdout.readexactly(_LEN.size))[0]
                self._answered(await proc.stdout.readexactly(size))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._closed:
                log.warning("signature worker stopped (%s): checking inline", exc)
            if self._worker is worker:
                self._lost("the worker stopped")
            self._starting = None
        finally:
            if self._worker is worker:
                self._lost("the worker stopped")
            self._starting = None

    def _lost(self, why: str) -> _Worker | None:
        """The worker is gone: what it held is checked here, in order, and it is told
        to stop (returned, so that a caller may wait for it)."""
        worker, self._worker = self._worker, None
        self._retry_at = time.monotonic() + _RESTART_AFTER_S
        held = list(self._inflight)
        self._inflight.clear()
        self._inflight_since.clear()
        self._inflight_events = 0
        for batch in held:
            self._answer_inline(batch)
        self._settle()
        if worker is not None:
            log.debug("signature worker stopped: %s", why)
            worker.stop()
        return worker


class _Worker:
    __slots__ = ("_proc",)

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def running(self) -> bool:
        """Not reaped yet (its exit not seen by this process)."""
        return self._proc.returncode is None

    def send(self, frame: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(frame)

    def stop(self) -> None:
        stdin = self._proc.stdin
        if stdin is not None:
            stdin.close()  # the worker exits at end of input
        if self._proc.returncode is None:
            asyncio.get_running_loop().call_later(_CLOSE_WAIT_S, self._kill)

    async def wait_closed(self) -> None:
        """Wait for the process to exit (killed if it has not within a few seconds)."""
        try:
            await asyncio.wait_for(self._proc.wait(), _CLOSE_WAIT_S)
        except TimeoutError:
            self._kill()
            await self._proc.wait()

    def _kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()


def _der(principal: Principal) -> bytes:
    return principal.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _inline_ok(principal: Principal, event: SignedEvent) -> bool:
    # Imported here, not at the top: the worker process needs none of the intake's
    # imports (authorizer, strict JSON), only the verify below.
    from gateway.events import intake

    return intake.signature_ok(principal, event)


def _safe(then: Answer, verified: bool) -> None:
    try:
        then(verified)
    except Exception:
        log.exception("signature check callback failed")


# -- the worker process ----------------------------------------------------------------


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def check_batch(body: bytes) -> bytes:
    """One request frame's body to its verdicts (one byte per event: 1 verified, 0 not).

    The rule is :func:`gateway.identity.signing.verify` with ``require_low_s=False``,
    the intake's; a key that is not an EC public key verifies nothing.
    """
    keys = _WORKER_KEYS
    out = bytearray()
    i = 0
    while i < len(body):
        key_len, msg_len, sig_len = _ITEM.unpack_from(body, i)
        i += _ITEM.size
        key_der = body[i : i + key_len]
        i += key_len
        message = body[i : i + msg_len]
        i += msg_len
        signature = body[i : i + sig_len]
        i += sig_len
        key = keys.get(key_der)
        if key is None:
            loaded = serialization.load_der_public_key(key_der)
            if not isinstance(loaded, ec.EllipticCurvePublicKey):
                out.append(0)
                continue
            if len(keys) >= 65536:
                keys.clear()
            key = keys[key_der] = loaded
        out.append(1 if verify(key, message, signature, require_low_s=False) else 0)
    return bytes(out)


# The worker's parsed keys, by their DER (one process, one loop: no lock).
_WORKER_KEYS: dict[bytes, ec.EllipticCurvePublicKey] = {}


def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The worker's loop: greet (an empty frame), then one reply per request frame
    (the CPU seconds it took, then its verdicts), until the end of its input."""
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    check_batch(b"")  # import what checking needs before saying ready
    sink.write(_LEN.pack(0))
    sink.flush()
    while True:
        header = _read_exactly(source, _LEN.size)
        if header is None:
            return
        body = _read_exactly(source, _LEN.unpack(header)[0])
        if body is None:
            return
        started = time.process_time()
        verdicts = check_batch(body)
        reply = _CPU.pack(time.process_time() - started) + verdicts
        sink.write(_LEN.pack(len(reply)) + reply)
        sink.flush()


__all__ = ["SignatureVerifier", "check_batch", "serve"]
