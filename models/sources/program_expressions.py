"""The two kinds of text in a ``torch.export`` archive that torch would evaluate, checked before
it does: symbolic sizes (``sympy.sympify``, an ``eval``) and guard code (``exec``-ed by
``ExportedProgram.module()``). Each is allowed only in the plain forms that export writes for a
CNN's dynamic sizes; :mod:`models.sources.program_check` calls these on every such string."""

from __future__ import annotations

import ast
import re

IDENT = r"(?!__)[A-Za-z_][A-Za-z0-9_]*"  # no dunders: no walking to __class__ / __globals__
# sympy's printed form of a size expression: Mul(Integer(96), Symbol('s16', positive=True, ...))
_SYMPY_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+(?:\.\d+)?(?:e-?\d+)?)"
    r"|(?P<string>'[a-z]+[0-9]+')|(?P<punct>[(),=+\-*/]))"
)
_SYMPY_NAMES = {
    "Symbol",
    "Integer",
    "Rational",
    "Float",
    "Add",
    "Mul",
    "Pow",
    "Max",
    "Min",
    "Mod",
    "Abs",
    "Eq",
    "Ne",
    "Lt",
    "Le",
    "Gt",
    "Ge",
    "StrictLessThan",
    "StrictGreaterThan",
    "LessThan",
    "GreaterThan",
    "Equality",
    "Unequality",
    "And",
    "Or",
    "Not",
    "true",
    "false",
    "oo",
    "True",
    "False",
    "integer",
    "positive",
    "nonnegative",
    "negative",
    "nonpositive",
    "real",
    "finite",
    "infinite",
    "zero",
    "nonzero",
    "even",
    "odd",
    "FloorDiv",
    "ModularIndexing",
    "Where",
    "PythonMod",
    "CleanDiv",
    "CeilToInt",
    "FloorToInt",
    "CeilDiv",
    "LShift",
    "RShift",
    "PowByNatural",
    "FloatPow",
    "FloatTrueDiv",
    "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat",
    "TruncToInt",
    "RoundToInt",
    "RoundDecimal",
    "ToFloat",
    "Identity",
    "OpaqueUnaryFn_sqrt",
    "BitwiseFn_bitwise_and",
    "BitwiseFn_bitwise_or",
    "Piecewise",
    "int_oo",
    "IntInfinity",
    "NegativeIntInfinity",
}
_MAX_EXPRESSION = 10_000  # characters: sympy's parser is slow on huge expressions
_MAX_DIGITS = 12  # a size literal; sympy's integers are unbounded
_MAX_EXPONENT = 64


def plain_sympy(text: str) -> bool:
    """Only whitelisted names (sympy classes and assumptions), numbers, size symbols' names in
    quotes and arithmetic: no attribute access, no other calls."""
    if len(text) > _MAX_EXPRESSION:
        return False
    position = 0
    while position < len(text):
        match = _SYMPY_TOKEN.match(text, position)
        if not match or match.end() == position:
            return text[position:].strip() == ""
        if match.group("name") and match.group("name") not in _SYMPY_NAMES:
            return False
        if match.group("number") and len(match.group("number")) > _MAX_DIGITS:
            return False
        position = match.end()
    return _small_powers(text)


def _small_powers(text: str) -> bool:
    """Every power's exponent is a literal integer up to ``_MAX_EXPONENT``: sympy computes an
    expression like ``Pow(10, Pow(10, 10))`` exactly, for hours and gigabytes."""
    for match in re.finditer(r"\b(?:Pow|PowByNatural|FloatPow)\(", text):
        depth, start = 1, match.end()
        comma = None
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    end = i
                    break
            elif ch == "," and depth == 1 and comma is None:
                comma = i
        else:
            return False
        if comma is None:
            return False
        exponent = re.fullmatch(r"\s*(?:Integer\()?(\d+)\)?\s*", text[comma + 1 : end])
        if exponent is None or int(exponent.group(1)) > _MAX_EXPONENT:
            return False
    return True


_GUARD_NODES = (
    ast.Expression,
    ast.Compare,
    ast.BoolOp,
    ast.UnaryOp,
    ast.BinOp,
    ast.Constant,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.And,
    ast.Or,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.FloorDiv,
    ast.Mod,
)


def plain_guard(code: object) -> bool:
    """A guard torch writes for dynamic shapes, such as ``L['x'].size()[3] == L['x'].size()[2]``
    or ``(1 + (((-1) + L['x'].size()[3]) // 2)) != 1``: integer arithmetic and comparisons of
    input sizes and literals, nothing else (no names, calls or attributes but the size
    lookup, no powers)."""
    if not isinstance(code, str) or len(code) > _MAX_EXPRESSION:
        return False
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        return False

    def plain(node: ast.AST) -> bool:
        if _size_lookup(node):
            return True
        if not isinstance(node, _GUARD_NODES):
            return False
        if isinstance(node, ast.Constant) and not (
            type(node.value) in (int, bool) and abs(int(node.value)) < 10**_MAX_DIGITS
        ):
            return False
        return all(plain(child) for child in ast.iter_child_nodes(node))

    return plain(tree)


def _size_lookup(node: ast.AST) -> bool:
    """``L['name'].size()[i]`` (or ``.stride()``), with a literal name and index."""
    if not (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and type(node.slice.value) is int
        and 0 <= node.slice.value < 8
    ):
        return False
    call = node.value
    if not (
        isinstance(call, ast.Call)
        and not call.args
        and not call.keywords
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in ("size", "stride")
    ):
        return False
    inputs = call.func.value
    return (
        isinstance(inputs, ast.Subscript)
        and isinstance(inputs.value, ast.Name)
        and inputs.value.id == "L"
        and isinstance(inputs.slice, ast.Constant)
        and isinstance(inputs.slice.value, str)
        and re.fullmatch(IDENT, inputs.slice.value) is not None
    )
