"""Functions for decoded connections, given as text in a network file.

``function = "x**2"`` is parsed into a Python AST and checked against a whitelist: the
variable ``x`` (the pre population's decoded vector, shape ``(d,)`` or ``(points, d)``),
numbers, arithmetic, comparisons, indexing ``x[0]``, list literals (a vector output) and a
fixed set of numpy functions. Nothing else is allowed: there is no ``eval`` of arbitrary
code. Every value is a float64, the text's length and the tree's depth and size are
bounded, and evaluation over the build's points has a deadline.

``function = "package.module:callable"`` names a Python callable instead. Importing it runs
the module's code, so it is refused unless the caller allows it (``allow_python``; the
``--allow-python-functions`` flag of ``run`` and ``serve``).
"""

from __future__ import annotations

import ast
import importlib
import math
import operator
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.errors import BuildError, NetworkFileError, SpikestreamError

FloatArray = npt.NDArray[np.float64]
VectorFunction = Callable[[FloatArray], FloatArray]

#: numpy functions allowed in expressions, by the name used in the expression.
ALLOWED_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in (
        "sin",
        "cos",
        "tan",
        "arcsin",
        "arccos",
        "arctan",
        "arctan2",
        "sinh",
        "cosh",
        "tanh",
        "exp",
        "expm1",
        "log",
        "log1p",
        "sqrt",
        "abs",
        "sign",
        "minimum",
        "maximum",
        "clip",
        "where",
        "floor",
        "ceil",
        "round",
        "hypot",
        "square",
    )
}
ALLOWED_CONSTANTS = {"pi": np.pi, "e": np.e}

#: How many arguments each function takes. numpy's ufuncs take an ``out`` array as an
#: extra positional argument, which would write into the evaluation points: refused.
_ARITY: dict[str, tuple[int, int]] = {
    **{name: (1, 1) for name in ALLOWED_FUNCTIONS},
    "arctan2": (2, 2),
    "minimum": (2, 2),
    "maximum": (2, 2),
    "hypot": (2, 2),
    "clip": (3, 3),
    "where": (3, 3),
    "round": (1, 2),
}

#: Longest expression, in characters, checked before the text reaches Python's parser
#: (100,000 unary minus signs exhaust the parser's memory).
MAX_EXPRESSION_CHARS = 2000
#: Deepest nesting of the parsed expression (each operator, call or subscript is a level;
#: a sum of n terms is n levels deep). The checker and evaluator recurse once or twice per
#: level, well inside Python's recursion limit.
MAX_EXPRESSION_DEPTH = 100
#: Most nodes in the parsed expression.
MAX_EXPRESSION_NODES = 1000
#: Seconds an expression or Python callable may take over a connection's evaluation points
#: when the network is built, before the build is refused.
FUNCTION_TIMEOUT = 10.0
#: ``round(x, n)`` takes a literal ``n`` with ``|n|`` at most this.
_MAX_DECIMALS = 15

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_CMP: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _int_literal(node: ast.AST | None) -> int | None:
    """The value of ``3`` or ``-3`` written in the text, else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


class _Checker(ast.NodeVisitor):
    """Rejects every node that is not on the whitelist, with a message naming it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, what: str) -> None:
        allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
        raise ValueError(
            f"function {_short(self.text)}: {what} is not allowed; expressions may use x, numbers, "
            f"+ - * / ** % //, comparisons, x[i], [a, b] and these functions: {allowed}"
        )

    def generic_visit(self, node: ast.AST) -> None:
        ok = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.Call,
            ast.Name,
            ast.Constant,
            ast.Subscript,
            ast.List,
            ast.Tuple,
            ast.Load,
            *_BINOPS,
            *_UNARY,
            *_CMP,
        )
        if not isinstance(node, ok):
            self.fail(type(node).__name__)
        # A function's name is a value nowhere but where it is called (its Call visits
        # the arguments alone): "sin" or "x + sin" alone were let through here and ended
        # the evaluation with a KeyError.
        if isinstance(node, ast.Name) and node.id not in ({"x"} | set(ALLOWED_CONSTANTS)):
            if node.id in ALLOWED_FUNCTIONS:
                self.fail(f"the function {node.id!r} other than called, as {node.id}(...)")
            self.fail(f"the name {node.id!r}")
        if isinstance(node, ast.Constant):
            self._number(node.value)
        if isinstance(node, ast.Call):
            self._call(node)
            for arg in node.args:
                self.visit(arg)
            return
        if isinstance(node, ast.Subscript):
            self._subscript(node)
            return  # the index was checked whole; its parts are not values
        super().generic_visit(node)

    def _number(self, value: object) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(f"the constant {value!r}")
        try:
            finite = math.isfinite(float(value))  # type: ignore[arg-type]
        except OverflowError:
            finite = False
        if not finite:
            self.fail(f"the number {str(value)[:20]} (not a finite float64)")

    def _call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            self.fail("calling the result of an expression")
            return
        name = node.func.id
        if name not in ALLOWED_FUNCTIONS:
            self.fail(f"the name {name!r}")
        if node.keywords:
            self.fail("a keyword argument")
        lo, hi = _ARITY[name]
        if not lo <= len(node.args) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} or {hi}"
            self.fail(f"calling {name} with {len(node.args)} argument(s) (it takes {count})")
        if name == "round" and len(node.args) == 2:
            decimals = _int_literal(node.args[1])
            if decimals is None or abs(decimals) > _MAX_DECIMALS:
                self.fail(
                    f"round's second argument other than a whole number up to {_MAX_DECIMALS}"
                )

    def _subscript(self, node: ast.Subscript) -> None:
        # Only x[i] and x[a:b:c] with whole numbers written out: nothing computed.
        if not (isinstance(node.value, ast.Name) and node.value.id == "x"):
            self.fail("indexing anything but x")
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = (index.lower, index.upper, index.step)
            if all(p is None or _int_literal(p) is not None for p in parts):
                return
        elif _int_literal(index) is not None:
            return
        self.fail(f"the index {ast.unparse(index)!r} (expected a whole number, as in x[0])")


def _check_size(text: str, where: str) -> None:
    """Refuse text too long for the parser, before it is parsed."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise NetworkFileError(
            f"{where}: an expression of {len(text)} characters is not allowed; expressions "
            f"may have at most {MAX_EXPRESSION_CHARS} characters"
        )


def _check_shape(tree: ast.AST, text: str, where: str) -> None:
    """Refuse trees too deep or too large, walking them without recursion (the checker and
    the evaluator recurse, so depth must be bounded first)."""
    nodes = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr_context):
            continue
        nodes += 1
        if depth > MAX_EXPRESSION_DEPTH:
            raise NetworkFileError(
                f"{where}: {_short(text)} nests deeper than {MAX_EXPRESSION_DEPTH} levels, "
                "which is not allowed; simplify the expression"
            )
        if nodes > MAX_EXPRESSION_NODES:
            raise NetworkFileError(
                f"{where}: {_short(text)} has more than {MAX_EXPRESSION_NODES} parts, which is "
                "not allowed; simplify the expression"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f" (… {len(text)} chars)"


def _uses_x(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "x" for n in ast.walk(node))


def _check_constants(tree: ast.Expression, text: str, where: str, timeout: float) -> None:
    """Refuse a part without ``x`` whose value is not finite (``9**9**9**9``, ``1/0``),
    naming that part: the message is clearer than a non-finite result over every point."""
    deadline = _Bounds(timeout, text, where, _widest_list(tree))
    one = np.zeros((1, 1))
    todo: list[ast.AST] = [tree.body]
    while todo:
        node = todo.pop()
        if _uses_x(node):
            if not isinstance(node, ast.Subscript):
                todo.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.expr))
            continue
        if isinstance(node, ast.Name):  # a function's name, or pi and e
            continue
        try:
            with np.errstate(all="ignore"):
                value = np.asarray(_evaluate(node, one, deadline), dtype=np.float64)
        except SpikestreamError:
            raise
        except (ValueError, TypeError, IndexError, ArithmeticError) as err:
            raise NetworkFileError(
                f"{where}: the part {_short(ast.unparse(node))} of {_short(text)} cannot be "
                f"evaluated ({err}), which is not allowed"
            ) from None
        if not np.all(np.isfinite(value)):
            raise NetworkFileError(
                f"{where}: the part {_short(ast.unparse(node))} of {_short(text)} evaluates to "
                f"{value.ravel()[0]}, which is not allowed; every number in an expression "
                "must stay a finite float64 (at most about 1.8e308)"
            )


class _Bounds:
    """Limits of one evaluation: a deadline ``seconds`` from now, and the widest value.

    A value is ``()`` (a number), ``(points,)`` or ``(points, k)`` with ``k`` at most the
    widest of ``x`` and the longest list literal in the text. numpy broadcasting would
    otherwise turn ``x[0] * [x[0]]`` ((points,) times (points, 1)) into a (points, points)
    array: 8 TB at a million evaluation points.
    """

    def __init__(self, seconds: float, text: str, where: str, widest_list: int = 1) -> None:
        self.at = time.monotonic() + seconds
        self.seconds, self.text, self.where = seconds, text, where
        self.widest_list = widest_list

    def check(self, points: int) -> None:
        """Raise :class:`BuildError` once the deadline has passed."""
        if time.monotonic() > self.at:
            raise BuildError(
                f"{self.where}: {_short(self.text)} did not finish within {self.seconds:g} s "
                f"over {points} evaluation points, which is not allowed; simplify the "
                "function or lower eval_points"
            )

    def shape(self, node: ast.AST, args: list[Any], x: FloatArray) -> None:
        """Refuse ``node`` (an operator or call on ``args``) when its result would not be
        a number, one value per point or one row of allowed width per point, before it is
        computed."""
        points, width = x.shape[0], max(x.shape[1], self.widest_list)
        shapes = [np.shape(a) for a in args]
        try:
            out = np.broadcast_shapes(*shapes)
        except ValueError:
            out = None
        fits = out is not None and (
            out in ((), (points,))
            or (len(out) == 2 and out[0] == points and out[1] <= width)
            # At one point (the check of constant parts) a list is a row: (k,) or (1, k).
            or (points == 1 and math.prod(out) <= width)
        )
        if not fits:
            got = "do not fit together" if out is None else f"give shape {out}"
            raise BuildError(
                f"{self.where}: in {_short(self.text)}, the values of shapes "
                f"{', '.join(map(str, shapes))} in {_short(ast.unparse(node))} {got}, which is "
                f"not allowed; expected a number, one value per point ({points},) or one row "
                f"of at most {width} numbers per point"
            )


def expression_width(text: str) -> int:
    """The most numbers per evaluation point that evaluating ``text`` can produce besides
    ``x`` itself: the longest list literal in it (1 for none, or for text that is not a
    bounded expression, which the build refuses anyway). The memory budget uses it to
    count an expression's intermediate arrays before anything is evaluated."""
    if len(text) > MAX_EXPRESSION_CHARS:
        return 1
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, MemoryError, RecursionError, ValueError):
        return 1
    return _widest_list(tree)


def _widest_list(tree: ast.AST) -> int:
    """The most elements of a list literal in ``tree`` (1 when there is none)."""
    lists = [len(n.elts) for n in ast.walk(tree) if isinstance(n, ast.List | ast.Tuple)]
    return max(lists, default=1)


def _evaluate(node: ast.AST, x: FloatArray, deadline: _Bounds) -> Any:
    # Every number is a float64 (a constant too), so no operation can build a huge
    # integer: 9**9**9**9 overflows to inf at once instead of computing for ever.
    # x has shape (points, d); x[i] means component i, so index the last axis.
    deadline.check(x.shape[0])
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, x, deadline)
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # the checker allowed only numbers
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return x[:, 0] if x.shape[1] == 1 else x
        return np.float64(ALLOWED_CONSTANTS[node.id])
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, x, deadline)
        right = _evaluate(node.right, x, deadline)
        deadline.shape(node, [left, right], x)
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, x, deadline))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, x, deadline)
        result: Any = True
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comp, x, deadline)
            deadline.shape(node, [result, left, right], x)
            result = np.logical_and(result, _CMP[type(op)](left, right))
            left = right
        return np.asarray(result, dtype=np.float64)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        if name == "round" and len(node.args) == 2:
            decimals = _int_literal(node.args[1])
            assert decimals is not None  # the checker allowed only a whole number
            return np.round(_evaluate(node.args[0], x, deadline), decimals)
        args = [_evaluate(a, x, deadline) for a in node.args]
        deadline.shape(node, args, x)
        return ALLOWED_FUNCTIONS[name](*args)
    if isinstance(node, ast.Subscript):
        index = node.slice
        if isinstance(index, ast.Slice):
            lo, hi, step = (_int_literal(p) for p in (index.lower, index.upper, index.step))
            return x[:, lo:hi:step]
        return x[:, _int_literal(index)]
    if isinstance(node, ast.List | ast.Tuple):
        parts = [_evaluate(e, x, deadline) for e in node.elts]
        for part, element in zip(parts, node.elts, strict=True):
            if np.ndim(part) > 1:
                raise BuildError(
                    f"{deadline.where}: in {_short(deadline.text)}, the list element "
                    f"{_short(ast.unparse(element))} has shape {np.shape(part)}, which is not "
                    "allowed; expected a number or one value per point"
                )
        return np.stack([np.broadcast_to(p, (x.shape[0],)) for p in parts], axis=1)
    raise ValueError(f"unsupported expression node {type(node).__name__}")


def compile_function(
    text: str,
    *,
    where: str = "function",
    allow_python: bool = False,
    timeout: float = FUNCTION_TIMEOUT,
) -> VectorFunction:
    """Turn ``text`` into a vectorised function.

    The result maps points of shape ``(points, d_in)`` to values of shape
    ``(points, d_out)``, and raises :class:`BuildError` if one call takes longer than
    ``timeout`` seconds. Values may be NaN or inf: the caller checks them.

    Args:
        text: a whitelisted expression in ``x``, or ``"package.module:callable"``.
        where: the key path named in error messages (``connections[0].function``).
        allow_python: whether ``"package.module:callable"`` may be imported and called;
            importing runs the module's code, so this is an explicit opt-in.
        timeout: seconds one call may take.

    Raises:
        NetworkFileError: the text is too long, too deep, not a whitelisted expression, a
            callable that is not allowed, or not importable.
    """
    text = text.strip()
    _check_size(text, where)
    if _IMPORT_PATH.match(text):
        if not allow_python:
            raise NetworkFileError(
                f"{where}: {text!r} names a Python callable, which is not allowed by default: "
                f"importing module {text.partition(':')[0]!r} runs its code. To allow it, pass "
                "--allow-python-functions to `spikestream run` or `serve` (for serve also "
                "SPIKESTREAM_ALLOW_PYTHON_FUNCTIONS=true or allow_python_functions = true in "
                "the settings file), or write the function as an expression in x"
            )
        return _import_callable(text, where, timeout)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise NetworkFileError(
            f"{where}: {_short(text)} is not a valid expression ({err.msg})"
        ) from None
    except (MemoryError, RecursionError):  # pragma: no cover - the size check comes first
        raise NetworkFileError(f"{where}: {_short(text)} is too complex to parse") from None
    _check_shape(tree, text, where)
    try:
        _Checker(text).visit(tree)
    except ValueError as err:
        raise NetworkFileError(f"{where}: {err}") from None
    _check_constants(tree, text, where, timeout)
    widest_list = _widest_list(tree)

    def fn(points: FloatArray) -> FloatArray:
        deadline = _Bounds(timeout, text, where, widest_list)
        # Overflow to inf and 0/0 are reported by the caller's finiteness check, with the
        # key and a point: numpy's warnings would say less, and as errors they would stop
        # the build with a traceback.
        with np.errstate(all="ignore"):
            out = np.asarray(_evaluate(tree, points, deadline), dtype=np.float64)
        if out.ndim == 0:
            out = np.full(points.shape[0], float(out))
        return out.reshape(points.shape[0], -1)

    return fn


def _import_callable(text: str, where: str, timeout: float) -> VectorFunction:
    module_name, _, attr = text.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise NetworkFileError(
            f"{where}: cannot import {text!r} ({err}); expected 'package.module:callable'"
        ) from None
    if not callable(obj):
        raise NetworkFileError(
            f"{where}: {text!r} is a {type(obj).__name__}, not callable; expected a function "
            "of one point of shape (d,)"
        )
    user: Callable[[FloatArray], Any] = obj

    def fn(points: FloatArray) -> FloatArray:
        # User callables take one point of shape (d,) at a time, as in Nengo. A call that
        # never returns cannot be interrupted here (it is code the user opted in to run);
        # the deadline bounds the loop over points.
        deadline = _Bounds(timeout, text, where)
        rows = []
        for p in points:
            deadline.check(points.shape[0])
            try:
                with np.errstate(all="ignore"):
                    rows.append(np.atleast_1d(np.asarray(user(p), dtype=np.float64)))
            except Exception as err:  # the user's code: any failure is a build error
                raise BuildError(
                    f"{where}: {text!r} raised {type(err).__name__} at x = {p.tolist()}: {err}"
                ) from None
        try:
            return np.stack(rows)
        except ValueError as err:
            raise BuildError(
                f"{where}: {text!r} returned values of different shapes ({err})"
            ) from None

    return fn
