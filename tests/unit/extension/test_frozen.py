"""The ``@value`` decorator behaves like a frozen dataclass for what the extension uses."""

from __future__ import annotations

import pytest

from concurrency_observer.extension.frozen import FrozenInstanceError, value


@value
class Point:
    x: int
    y: int = 0
    label: str = "p"


def test_positional_keyword_and_defaults() -> None:
    """Fields bind by position or keyword; omitted ones take their defaults."""
    point = Point(1, label="q")
    assert (point.x, point.y, point.label) == (1, 0, "q")


def test_equality_hash_and_repr() -> None:
    """Equal fields make equal, equally hashed objects; repr names every field."""
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='p')"


def test_frozen() -> None:
    """Assigning or deleting a field raises FrozenInstanceError (an AttributeError)."""
    point = Point(1)
    with pytest.raises(FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.x
    assert point.x == 1


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, "a", 4), {}), ((1,), {"x": 1}), ((1,), {"z": 1})],
)
def test_bad_arguments(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    """Missing, surplus, duplicated or unknown arguments raise TypeError."""
    with pytest.raises(TypeError):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_required_after_default_is_refused() -> None:
    """A field without a default after one with a default is a definition error."""
    with pytest.raises(TypeError, match="follows"):

        @value
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]
