"""Function expressions: the whitelist's edges (length, keywords, comparisons, a scalar
``x``), each found unchecked by mutation testing."""

from __future__ import annotations

import numpy as np
import pytest

from spikestream.errors import NetworkFileError
from spikestream.functions import MAX_EXPRESSION_CHARS, compile_function

WHERE = "connections[0].function"


def test_an_expression_one_character_over_the_limit_is_refused() -> None:
    """The limit is exactly ``MAX_EXPRESSION_CHARS``: at it the text compiles, one more
    character is refused with the count and the limit."""
    at_limit = "x" + "+x" * ((MAX_EXPRESSION_CHARS - 1) // 2)
    at_limit += "0" * (MAX_EXPRESSION_CHARS - len(at_limit))  # x+...+x00: still x + x...
    assert len(at_limit) == MAX_EXPRESSION_CHARS
    # Too deep to compile, but refused for its depth, past the length check.
    with pytest.raises(NetworkFileError, match="nests deeper than"):
        compile_function(at_limit, where=WHERE)
    over = at_limit + "0"
    with pytest.raises(NetworkFileError) as info:
        compile_function(over, where=WHERE)
    assert str(info.value) == (
        f"{WHERE}: an expression of {MAX_EXPRESSION_CHARS + 1} characters is not allowed; "
        f"expressions may have at most {MAX_EXPRESSION_CHARS} characters"
    )


@pytest.mark.parametrize("text", ["round(x, decimals=2)", "sin(x, out=x)", "abs(x, where=x)"])
def test_keyword_arguments_are_refused(text: str) -> None:
    """The evaluator passes positional arguments only: a keyword would be dropped silently
    (``round(x, decimals=2)`` rounding to whole numbers) or, passed on, write into the
    evaluation points (``out=x``)."""
    with pytest.raises(NetworkFileError, match=r"a keyword argument is not allowed"):
        compile_function(text, where=WHERE)


def test_comparisons_include_their_bound() -> None:
    """``>=`` and ``<=`` are true at equality, ``>`` and ``<`` are not."""
    points = np.array([[-1.0], [0.0], [1.0]])
    got = {
        text: compile_function(text, where=WHERE)(points)[:, 0].tolist()
        for text in ("x >= 0", "x > 0", "x <= 0", "x < 0")
    }
    assert got == {
        "x >= 0": [0.0, 1.0, 1.0],
        "x > 0": [0.0, 0.0, 1.0],
        "x <= 0": [1.0, 1.0, 0.0],
        "x < 0": [1.0, 0.0, 0.0],
    }


def test_x_of_one_dimension_is_a_number_per_point() -> None:
    """For a 1-d population ``x`` is one number per point, so ``[x, 2 * x]`` is a row of
    two numbers (as ``[x[0], 2 * x[0]]``), not a list of columns."""
    points = np.array([[0.5], [-1.0]])
    out = compile_function("[x, 2 * x]", where=WHERE)(points)
    assert out.tolist() == [[0.5, 1.0], [-1.0, -2.0]]
