"""The contract base class and the decorators that publish transaction functions.

A contract is a class with a ``name`` and methods marked :func:`transaction`
(submitted: may write state) or :func:`query` (evaluated: read only). Every
published method takes the :class:`~chaincode.runtime.context.Context` as its
first parameter after ``self`` (Defect (e): the shim treats an unannotated
``ctx`` as a transaction argument; here the first parameter is always the
context, annotated or not), then its transaction arguments as ``str``::

    class Notes(Contract):
        name = "notes"

        @transaction("Put")
        async def put(self, ctx, key: str, text: str) -> dict:
            await ctx.put_json(ctx.key("note", key), {"text": text})
            return {"key": key}

        @query("Get")
        async def get(self, ctx, key: str) -> dict: ...

Functions may be ``async`` or plain. Parameters with defaults are optional
arguments. A call with too few or too many arguments, or an argument larger
than ``max_arg_bytes``, is refused before the function runs.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

#: Default ceiling for one transaction argument, in bytes of UTF-8.
DEFAULT_MAX_ARG_BYTES = 64 * 1024
_MARK = "__anchorline_transaction__"


@dataclasses.dataclass(frozen=True)
class TransactionSpec:
    """What a decorator records about one published function."""

    name: str
    kind: str  # "submit" or "evaluate"
    max_arg_bytes: int


def _mark(kind: str, name: str | None, max_arg_bytes: int) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        setattr(fn, _MARK, TransactionSpec(name or fn.__name__, kind, max_arg_bytes))
        return fn

    return decorate


@overload
def transaction(name: F) -> F: ...
@overload
def transaction(
    name: str | None = None, *, max_arg_bytes: int = DEFAULT_MAX_ARG_BYTES
) -> Callable[[F], F]: ...
def transaction(name: Any = None, *, max_arg_bytes: int = DEFAULT_MAX_ARG_BYTES) -> Any:
    """Publish a method as a submit transaction (``@transaction`` or ``@transaction("Name")``)."""
    if callable(name):
        return _mark("submit", None, max_arg_bytes)(name)
    return _mark("submit", name, max_arg_bytes)


@overload
def query(name: F) -> F: ...
@overload
def query(
    name: str | None = None, *, max_arg_bytes: int = DEFAULT_MAX_ARG_BYTES
) -> Callable[[F], F]: ...
def query(name: Any = None, *, max_arg_bytes: int = DEFAULT_MAX_ARG_BYTES) -> Any:
    """Publish a method as an evaluate (read-only) transaction."""
    if callable(name):
        return _mark("evaluate", None, max_arg_bytes)(name)
    return _mark("evaluate", name, max_arg_bytes)


@dataclasses.dataclass(frozen=True)
class Route:
    """One published function of one contract instance."""

    contract: str
    spec: TransactionSpec
    function: Callable[..., Any]
    params: tuple[str, ...]  # argument names, context excluded
    required: int  # how many of them have no default
    doc: str

    @property
    def qualified_name(self) -> str:
        return f"{self.contract}:{self.spec.name}"

    def usage(self) -> str:
        shown = [p if i < self.required else f"[{p}]" for i, p in enumerate(self.params)]
        return f"{self.qualified_name}({', '.join(shown)})"


class Contract:
    """Base of every Anchorline contract. Subclasses set ``name``."""

    name: ClassVar[str] = ""

    def routes(self) -> list[Route]:
        """The published functions of this contract, in definition order."""
        if not self.name:
            raise TypeError(f"{type(self).__name__} must set a contract name")
        routes: list[Route] = []
        seen: set[str] = set()
        for klass in reversed(type(self).__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, _MARK, None)
                if not isinstance(spec, TransactionSpec) or attr in seen:
                    continue
                seen.add(attr)
                bound = getattr(self, attr)
                params = list(inspect.signature(bound).parameters.values())
                if not params or params[0].kind not in (
                    inspect.Parameter.POSITIONAL_ONLY,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                ):
                    raise TypeError(f"{self.name}:{spec.name} must take the context first")
                args = params[1:]
                if any(p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD,) for p in args):
                    raise TypeError(f"{self.name}:{spec.name} may take only plain arguments")
                required = sum(1 for p in args if p.default is inspect.Parameter.empty)
                routes.append(
                    Route(
                        contract=self.name,
                        spec=spec,
                        function=bound,
                        params=tuple(p.name for p in args),
                        required=required,
                        doc=inspect.getdoc(bound) or "",
                    )
                )
        if not routes:
            raise TypeError(f"contract {self.name} publishes no functions")
        return routes
