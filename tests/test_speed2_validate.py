"""The JSON-like walk passes plain items over without a call: the same values pass and fail,
with the same messages, as when every item was walked by itself."""

from __future__ import annotations

from typing import Any

import pytest

from satchel.actors import _validate as validate
from satchel.runtime._errors import InvalidArgumentError, ValidationError


def _nested(depth: int, inner: Any) -> Any:
    value = inner
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("inner", [{}, [], ()])
def test_an_empty_container_counts_towards_the_depth_limit(inner: Any) -> None:
    validate.json_like("v", _nested(validate.MAX_DEPTH - 1, inner))
    with pytest.raises(ValidationError, match="nested more than 64 levels deep"):
        validate.json_like("v", _nested(validate.MAX_DEPTH, inner))
    with pytest.raises(ValidationError, match="nested more than 64 levels deep"):
        validate.json_like("v", [_nested(validate.MAX_DEPTH - 1, inner)])


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_float_that_is_not_finite_is_refused_in_maps_and_arrays(bad: float) -> None:
    with pytest.raises(ValidationError, match=r"v\['a'\]\[1\]: .* is not a finite number"):
        validate.json_like("v", {"a": [1.5, bad]})
    with pytest.raises(ValidationError, match=r"v\[0\]\['b'\]: .* is not a finite number"):
        validate.json_like("v", ({"b": bad},))


def test_integers_past_64_bits_and_other_types_are_refused_where_they_are() -> None:
    validate.json_like("v", {"a": [-(1 << 63), (1 << 64) - 1, 0.0, -0.0, True, None, ""]})
    with pytest.raises(ValidationError, match=r"v\['a'\]\[0\]: integer .* 64 bits"):
        validate.json_like("v", {"a": [1 << 64]})
    with pytest.raises(ValidationError, match=r"v\['a'\]: integer .* 64 bits"):
        validate.json_like("v", {"a": -(1 << 63) - 1})
    with pytest.raises(InvalidArgumentError, match=r"v\[1\]: set is not a JSON-like value"):
        validate.json_like("v", [{}, set()])
    with pytest.raises(InvalidArgumentError, match=r"v\['a'\]: map keys must be strings"):
        validate.json_like("v", {"a": {1: "x"}})


def test_subclasses_of_plain_types_are_still_refused() -> None:
    class Text(str):
        pass

    class Map(dict[str, Any]):
        pass

    with pytest.raises(InvalidArgumentError, match="Text is not a JSON-like value"):
        validate.json_like("v", {"a": Text("x")})
    with pytest.raises(InvalidArgumentError, match="Map is not a JSON-like value"):
        validate.json_like("v", [Map()])


def test_a_value_that_is_no_json_at_the_depth_limit_is_refused_for_its_depth() -> None:
    """A value that is not JSON-like, 64 levels deep, is refused for its depth first, as
    before the walk took containers first (ValidationError, not InvalidArgumentError)."""
    value: object = {1, 2}
    for _ in range(64):
        value = [value]
    with pytest.raises(ValidationError, match="levels deep"):
        validate.json_like("v", value)
