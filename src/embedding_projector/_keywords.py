"""A misspelt keyword of a public constructor names the parameter that was meant.

Python's own message (``got an unexpected keyword argument 'stabilty'``) leaves the reader to
guess; :func:`suggest_keywords` checks the keywords against ``__init__``'s signature and adds
the closest parameter (:mod:`difflib`), or where an option moved to. The signature itself is
unchanged (no ``**kwargs``), so mypy flags the same typo before the code runs.

The check runs in ``__new__``, which ``type.__call__`` runs before ``__init__``: no frame is
added between the caller and ``__init__``, so every ``warnings.warn(stacklevel=...)`` in a
constructor still points at the caller's line (a wrapping function would shift them all).

Example:
    >>> @suggest_keywords()
    ... class Snapshot:
    ...     def __init__(self, *, limit: int = 10, probe_rows: list[str] | None = None) -> None:
    ...         self.limit = limit
    >>> Snapshot(limt=3)  # type: ignore[call-arg]
    Traceback (most recent call last):
    ...
    TypeError: Snapshot() got an unexpected keyword argument 'limt'; did you mean 'limit'?
    >>> Snapshot(limit=3).limit
    3
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["suggest_keywords", "unexpected_keyword"]

_Class = TypeVar("_Class", bound=type)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def suggest_keywords(moved: Mapping[str, str] | None = None) -> Callable[[_Class], _Class]:
    """Decorate a class so an unknown keyword of its constructor is a ``TypeError`` that
    names the closest parameter, or ``moved[keyword]`` (where it belongs).

    Subclasses are checked against their own ``__init__`` (one that takes ``**kwargs`` is not
    checked).

    Args:
        moved: keyword -> where it belongs (``"insight=InsightOptions(map_rows=...)"``).
    """
    hints = dict(moved or {})

    def decorate(cls: _Class) -> _Class:
        inherited_new: Any = cls.__new__
        accepted_by: dict[type, frozenset[str] | None] = {}

        def __new__(klass: type, *args: Any, **kwargs: Any) -> Any:
            if kwargs:
                if klass not in accepted_by:
                    accepted_by[klass] = _keywords_of(klass.__init__)  # type: ignore[misc]
                _check(klass.__name__, kwargs, accepted_by[klass], hints)
            if inherited_new is object.__new__:
                return object.__new__(klass)
            return inherited_new(klass, *args, **kwargs)

        # inspect.signature(cls), help() and IDEs read __new__ first: show __init__'s.
        signature = inspect.signature(cls.__init__)  # type: ignore[misc]
        __new__.__signature__ = signature  # type: ignore[attr-defined]
        cls.__new__ = staticmethod(__new__)  # type: ignore[assignment]
        return cls

    return decorate


def _check(
    owner: str, kwargs: Mapping[str, Any], accepted: frozenset[str] | None, hints: Mapping[str, str]
) -> None:
    if accepted is None:
        return
    for keyword in kwargs:
        if keyword not in accepted:
            raise TypeError(unexpected_keyword(owner, keyword, accepted, hints))


def _keywords_of(init: Callable[..., Any]) -> frozenset[str] | None:
    """The names ``init`` takes as keywords; ``None`` if it takes any (``**kwargs``)."""
    parameters = inspect.signature(init).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind in _NAMED) - {"self"}


def unexpected_keyword(
    owner: str, keyword: str, accepted: frozenset[str], moved: Mapping[str, str]
) -> str:
    """The message for ``keyword``, which ``owner`` does not take.

    Example:
        >>> unexpected_keyword("f", "colour", frozenset({"color", "size"}), {})
        "f() got an unexpected keyword argument 'colour'; did you mean 'color'?"
    """
    message = f"{owner}() got an unexpected keyword argument {keyword!r}"
    if keyword in moved:
        return f"{message}; it goes in {moved[keyword]}."
    close = difflib.get_close_matches(keyword, sorted(accepted), n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; it takes {', '.join(sorted(accepted))}."
