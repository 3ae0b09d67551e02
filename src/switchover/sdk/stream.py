"""Stream routes: a side is a stream of chunks (STT transcripts, LLM tokens, TTS audio).

A stream may fall back only before its first chunk: once the caller has a chunk, the
side is fixed. :class:`StreamCall` holds one stream call's bookkeeping, shared by the
async and sync routes (which differ only in how they wait for a chunk): the side that
serves, the candidate's failure if it fell back, the time to the first chunk, and
what is recorded when the stream ends, fails midway or is closed by the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from types import AsyncGeneratorType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchover.sdk.executor import Executor, OperationConfig

END: Any = object()
"""The first 'chunk' of a stream that ended without any."""

_EMPTY: Mapping[str, Any] = {}


def _source(
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    _functions: tuple[type, ...] = (FunctionType, MethodType),
) -> Any:
    """An iterable given as is, or made by calling ``fn`` (a generator function...)."""
    if isinstance(fn, _functions):  # the common case, without a failing hasattr
        return fn(*args, **kwargs)
    if hasattr(fn, "__aiter__") or hasattr(fn, "__iter__") or not callable(fn):
        return fn
    return fn(*args, **kwargs)


async def start(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Open a side's async stream and wait for its first chunk (``END`` if none)."""
    src = _source(fn, args, kwargs)
    if src.__class__ is AsyncGeneratorType:  # the common case
        try:
            return src, await src.__anext__()
        except StopAsyncIteration:
            return src, END
        except BaseException:
            await src.aclose()
            raise
    if not hasattr(src, "__aiter__") and hasattr(src, "__await__"):
        src = await src  # an async function returning the stream
    if not hasattr(src, "__aiter__"):
        raise TypeError(
            f"route_stream needs an async iterable or an async generator function, "
            f"got {type(src).__name__}"
        )
    it: AsyncIterator[Any] = src.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        return it, END
    except BaseException:
        await aclose(it)
        raise
    return it, first


def start_sync(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Open a side's sync stream and take its first chunk (``END`` if none)."""
    src = _source(fn, args, kwargs)
    if not hasattr(src, "__iter__"):
        raise TypeError(
            f"route_stream_sync needs an iterable or a generator function, got {type(src).__name__}"
        )
    it: Iterator[Any] = iter(src)
    try:
        first = next(it)
    except StopIteration:
        return it, END
    except BaseException:
        close(it)
        raise
    return it, first


async def collect(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Every chunk of a side's async stream (a shadowed candidate)."""
    it, first = await start(fn, args, kwargs)
    if first is END:
        return []
    out = [first]
    try:
        async for chunk in it:
            out.append(chunk)
    finally:
        await aclose(it)
    return out


async def aclose(it: Any) -> None:
    closer = getattr(it, "aclose", None)
    if closer is not None:
        await closer()


def close(it: Any) -> None:
    closer = getattr(it, "close", None)
    if closer is not None:
        closer()


class StreamCall:
    """One stream call's bookkeeping: started, side chosen, first chunk, end."""

    __slots__ = (
        "candidate_exc",
        "candidate_ms",
        "cfg",
        "context",
        "ex",
        "first_ms",
        "operation",
        "recorded",
        "side",
        "started",
        "tenant",
    )

    def __init__(
        self,
        ex: Executor,
        cfg: OperationConfig,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        started: float,
    ) -> None:
        self.ex = ex
        self.cfg = cfg
        self.operation = operation
        self.context = context
        self.tenant = tenant
        self.started = started
        self.side = "legacy"
        self.candidate_exc: BaseException | None = None
        self.candidate_ms = 0.0
        self.first_ms: float | None = None
        self.recorded = False

    def candidate_failed(self, exc: BaseException, now: float) -> bool:
        """The candidate failed before its first chunk: True to raise it (no fallback)."""
        self.candidate_ms = (now - self.started) * 1000.0
        if self.ex._no_fallback(
            self.cfg, self.operation, self.context, self.tenant, exc, self.candidate_ms
        ):
            return True
        self.candidate_exc = exc
        return False

    def legacy_failed(self, exc: BaseException, now: float) -> None:
        """Legacy failed before its first chunk (after the candidate's, a total failure)."""
        self.recorded = True
        if self.candidate_exc is not None:
            self.ex._total_failure(
                self.operation,
                self.context,
                self.tenant,
                self.candidate_exc,
                self.candidate_ms,
                exc,
            )
        else:
            self.ex._failed(self.operation, "legacy", self.started, self.tenant, exc)

    def first_chunk(self, side: str, now: float) -> None:
        self.side = side
        self.first_ms = (now - self.started) * 1000.0
        if self.candidate_exc is not None:  # legacy answered after the candidate failed
            self.recorded = True
            self.ex._record_fallback(
                self.operation,
                self.context,
                self.tenant,
                self.candidate_exc,
                self.candidate_ms,
                None,
                None,
                self.first_ms,
            )

    def midstream_error(self, exc: BaseException, now: float) -> None:
        """A failure after the first chunk: recorded on the serving side, then raised."""
        from switchover.sdk.executor import _error_type

        self.recorded = True
        ex = self.ex
        if self.side == "candidate":
            ex._candidate_failed(self.cfg, self.operation)
        elapsed = (now - self.started) * 1000.0
        ex._record(
            self.operation,
            self.side,
            elapsed,
            False,
            _error_type(exc),
            outcome={"stream.midstream_error": 1.0},
            tenant=self.tenant,
            first_chunk_ms=self.first_ms,
        )
        ex._log(
            "midstream_error",
            migration=ex.name,
            operation=self.operation,
            side=self.side,
            error_type=_error_type(exc),
            error=str(exc)[:500],
            elapsed_ms=round(elapsed, 3),
            context=dict(self.context or _EMPTY),
        )

    def end(self, now: float) -> None:
        """The stream ended, or the caller closed it: one served observation."""
        if self.recorded:
            return
        self.recorded = True
        if self.side == "candidate":
            self.ex._candidate_ok(self.cfg)
        self.ex._record(
            self.operation,
            self.side,
            (now - self.started) * 1000.0,
            tenant=self.tenant,
            first_chunk_ms=self.first_ms,
        )
