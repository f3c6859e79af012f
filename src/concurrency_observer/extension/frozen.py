"""Immutable value classes without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``) and the extension
would need ``typing`` beside it: about 15 ms at every cold start, as much as a whole minimal
extension takes (docs/design.md, "Nothing heavy at cold start"). ``@value`` does the part the
extension needs:

- an ``__init__`` over the annotated fields, in order, positional or by keyword, with plain
  (immutable) class-level defaults;
- ``__repr__``, ``__eq__`` and ``__hash__``;
- frozen instances: assigning or deleting an attribute raises ``FrozenInstanceError``.

Type checkers see a frozen dataclass (PEP 681 ``dataclass_transform``). Not supported, because
nothing here needs them: inheritance between value classes, ``field()``, default factories,
``ClassVar`` fields, positional ``match`` patterns (``__match_args__``).
"""

from __future__ import annotations

# typing is imported for type checkers only; at run time it costs milliseconds at every cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_options):
        return lambda decorator: decorator


_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Raised on an attempt to change an attribute of a value object."""


@dataclass_transform(frozen_default=True, eq_default=True)
def value(cls: type[_T]) -> type[_T]:
    """Make ``cls`` an immutable value class over its annotated fields (module docstring)."""
    # Not inspect.get_annotations: inspect is what this module avoids importing. Python 3.14
    # evaluates annotations lazily and may not keep them in the class __dict__.
    annotations = cls.__dict__.get("__annotations__")  # noqa: RUF063
    if annotations is None:
        annotations = getattr(cls, "__annotations__", {})
    fields = tuple(annotations)
    defaults = {name: cls.__dict__.get(name, _MISSING) for name in fields}
    seen_default = False
    for name in fields:
        if defaults[name] is not _MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs and len(args) == len(fields):  # the common case, per event: no lookups
            for name, field_value in zip(fields, args, strict=True):
                object.__setattr__(self, name, field_value)
            return
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments, got {len(args)}")
        given = dict(zip(fields, args, strict=False))
        for name, field_value in kwargs.items():
            if name not in defaults:
                raise TypeError(f"{cls.__name__}() got an unexpected argument {name!r}")
            if name in given:
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            given[name] = field_value
        for name in fields:
            field_value = given.get(name, defaults[name])
            if field_value is _MISSING:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
            object.__setattr__(self, name, field_value)

    def _astuple(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in fields)

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"{cls.__name__}({shown})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(_astuple(self) == _astuple(other))

    def __hash__(self: Any) -> int:
        return hash(_astuple(self))

    def __setattr__(self: Any, name: str, _value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r} of {cls.__name__}")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r} of {cls.__name__}")

    methods = {
        "__init__": __init__,
        "__repr__": __repr__,
        "__eq__": __eq__,
        "__hash__": __hash__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
    }
    for name, method in methods.items():
        if name not in cls.__dict__:  # like dataclasses: a method the class defines is kept
            type.__setattr__(cls, name, method)
    return cls
