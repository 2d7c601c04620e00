"""A misspelt keyword of a public entry point names the parameter that was meant.

Python's own message (``got an unexpected keyword argument 'stabilty'``) leaves the reader to
guess; :func:`suggest_keywords` checks the keywords against the signature before the call and
adds the closest parameter (:mod:`difflib`), or where an option moved to. The signature itself
is unchanged (no ``**kwargs``), so mypy flags the same typo before the code runs.

Example:
    >>> @suggest_keywords()
    ... def snapshot(*, limit: int = 10, probe_rows: list[str] | None = None) -> int:
    ...     return limit
    >>> snapshot(limt=3)  # type: ignore[call-arg]
    Traceback (most recent call last):
    ...
    TypeError: snapshot() got an unexpected keyword argument 'limt'; did you mean 'limit'?
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

__all__ = ["suggest_keywords"]

_Function = TypeVar("_Function", bound=Callable[..., Any])
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def suggest_keywords(
    moved: Mapping[str, str] | None = None,
) -> Callable[[_Function], _Function]:
    """Decorate a function (or a class's ``__init__``) so an unknown keyword is a
    ``TypeError`` that names the closest parameter, or ``moved[keyword]`` (where it went).

    Args:
        moved: keyword -> where it belongs now (``"RowSelection(limit=...)"``).
    """
    hints = dict(moved or {})

    def decorate(function: _Function) -> _Function:
        parameters = inspect.signature(function).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return function  # it takes any keyword: nothing to check
        accepted = frozenset(p.name for p in parameters if p.kind in _NAMED) - {"self"}
        owner = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            for keyword in kwargs:
                if keyword not in accepted:
                    raise TypeError(unexpected_keyword(owner, keyword, accepted, hints))
            return function(*args, **kwargs)

        return cast(_Function, checked)

    return decorate


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
