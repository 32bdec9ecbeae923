"""Functions for decoded connections, given as text in a network file.

``function = "x**2"`` is parsed into a Python AST and checked against a whitelist: the
variable ``x`` (the pre population's decoded vector, shape ``(d,)`` or ``(points, d)``),
numbers, arithmetic, comparisons, indexing ``x[0]``, list literals (a vector output) and a
fixed set of numpy functions. Nothing else is allowed: there is no ``eval`` of arbitrary
code. ``function = "package.module:callable"`` names a Python callable instead.
"""

from __future__ import annotations

import ast
import importlib
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.errors import NetworkFileError

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


class _Checker(ast.NodeVisitor):
    """Rejects every node that is not on the whitelist, with a message naming it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, what: str) -> None:
        allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
        raise ValueError(
            f"function {self.text!r}: {what} is not allowed; expressions may use x, numbers, "
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
            ast.Slice,
            *_BINOPS,
            *_UNARY,
            *_CMP,
        )
        if not isinstance(node, ok):
            self.fail(type(node).__name__)
        if isinstance(node, ast.Name) and node.id not in (
            {"x"} | set(ALLOWED_FUNCTIONS) | set(ALLOWED_CONSTANTS)
        ):
            self.fail(f"the name {node.id!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            self.fail(f"the constant {node.value!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                self.fail("calling the result of an expression")
            elif node.func.id not in ALLOWED_FUNCTIONS:
                self.fail(f"the name {node.func.id!r}")
            elif node.keywords:
                self.fail("a keyword argument")
        super().generic_visit(node)


def _evaluate(node: ast.AST, x: FloatArray) -> Any:
    # x has shape (points, d); x[i] means component i, so index the last axis.
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, x)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id == "x":
            return x[:, 0] if x.shape[1] == 1 else x
        return ALLOWED_CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, x), _evaluate(node.right, x))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, x))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, x)
        result: Any = True
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comp, x)
            result = np.logical_and(result, _CMP[type(op)](left, right))
            left = right
        return np.asarray(result, dtype=np.float64)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return ALLOWED_FUNCTIONS[node.func.id](*(_evaluate(a, x) for a in node.args))
    if isinstance(node, ast.Subscript):
        if isinstance(node.value, ast.Name) and node.value.id == "x":
            index = _evaluate(node.slice, x)
            return x[:, index]
        return _evaluate(node.value, x)[_evaluate(node.slice, x)]
    if isinstance(node, ast.List | ast.Tuple):
        parts = [np.broadcast_to(_evaluate(e, x), (x.shape[0],)) for e in node.elts]
        return np.stack(parts, axis=1)
    raise ValueError(f"unsupported expression node {type(node).__name__}")


def compile_function(text: str, *, where: str = "function") -> VectorFunction:
    """Turn ``text`` into a vectorised function.

    The result maps points of shape ``(points, d_in)`` to values of shape
    ``(points, d_out)``.

    Raises:
        NetworkFileError: the text is not a whitelisted expression or importable callable.
    """
    if _IMPORT_PATH.match(text.strip()):
        return _import_callable(text.strip(), where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
        _Checker(text).visit(tree)
    except SyntaxError as err:
        raise NetworkFileError(f"{where}: {text!r} is not a valid expression ({err.msg})") from None
    except ValueError as err:
        raise NetworkFileError(f"{where}: {err}") from None

    def fn(points: FloatArray) -> FloatArray:
        out = np.asarray(_evaluate(tree, points), dtype=np.float64)
        if out.ndim == 0:
            out = np.full(points.shape[0], float(out))
        return out.reshape(points.shape[0], -1)

    return fn


def _import_callable(text: str, where: str) -> VectorFunction:
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
        raise NetworkFileError(f"{where}: {text!r} is not callable")
    user: Callable[[FloatArray], Any] = obj

    def fn(points: FloatArray) -> FloatArray:
        # User callables take one point of shape (d,) at a time, as in Nengo.
        rows = [np.atleast_1d(np.asarray(user(p), dtype=np.float64)) for p in points]
        return np.stack(rows)

    return fn
