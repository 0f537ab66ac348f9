"""Attribute filters: two spellings, one canonical AST.

Users write filters either as expressions::

    from vecdex import field
    (field("section") == "python") & field("size_kb").between(10, 500) & ~field("tags").contains("x")

or as Mongo-style dicts::

    {"section": "python", "size_kb": {"$gte": 10, "$lte": 500}, "$not": {"tags": "x"}}

`compile_filter` type-checks either against the index schema and returns the
canonical AST of the shared spec (nested tuples; the lists inside are lists)::

    ("all",) ("none",) ("and", [..]) ("or", [..]) ("not", node) ("eq", f, v) ("in", f, [..])
    ("all_of", f, [..]) ("range", f, lo, hi, lo_incl, hi_incl) ("exists", f)

Semantics: a missing value matches no comparison; ``not`` is plain set
complement, so ``!=``, ``$ne``, ``$nin`` and ``~`` match rows where the field is
missing.  On a ``keywords`` field ``==``/``isin``/``contains`` match when any
value matches, ``contains_all`` when the row holds every value.

Every value in the AST is a plain Python ``str``/``int``/``float``/``bool`` of
the field's type (numpy scalars are converted).  The compiler simplifies, always
preserving the meaning:

* ``and``/``or`` are flattened; a single child replaces its parent; ``all`` is
  dropped from ``and`` and ``none`` from ``or``; ``none`` absorbs ``and`` and
  ``all`` absorbs ``or``; ``not`` of ``not``/``all``/``none`` is folded.
* ``!=`` / ``$ne`` become ``("not", ("eq", ..))``; ``$nin`` becomes
  ``("not", ("in", ..))``; ``$exists: False`` becomes ``("not", ("exists", f))``.
* ``in`` with duplicate values is deduplicated; with one value it becomes ``eq``;
  with none it becomes ``("none",)``.
* Ranges on the same field inside one ``and`` are intersected into a single
  ``range`` (``{"$gte": 10, "$lt": 500}`` is one node); an empty range
  (``between(lo, hi)`` with ``lo > hi`` included) becomes ``("none",)``; a range
  with no bound left becomes ``("exists", f)``.  Unbounded sides carry
  ``incl=False``.
* int fields only see int64 values: float operands are turned into the
  equivalent integer bound (``size_kb > 2.5`` -> ``size_kb >= 3``), ``==`` with a
  non-integral float matches nothing, and out-of-int64 operands become
  ``none``/unbounded.  float fields only see floats: an int operand that no
  float64 equals exactly is moved to the nearest float on the correct side.
* ``contains_all([])`` / ``$all: []`` (every value of the empty set) is
  ``("exists", f)``; ``contains_all`` with one value is ``eq``; on a ``keyword``
  field with two different values it is ``("none",)``.

This module is pure Python (numpy only) and never imports the native core.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["FIELD_TYPES", "Expr", "Field", "compile_filter", "compile_filters", "field"]

FIELD_TYPES = ("keyword", "keywords", "int", "float", "bool")
_NUMERIC = ("int", "float")
_STRINGS = ("keyword", "keywords")
_INT64_MIN = -(2 ** 63)
_INT64_MAX = 2 ** 63 - 1

_ALL = ("all",)
_NONE = ("none",)

_BOOL_HINT = (
    "the truth value of a filter expression is ambiguous: combine filters with & (and), | (or) "
    "and ~ (not) instead of the Python keywords and/or/not, use field(...).isin([...]) instead of "
    "'in', and field(...).between(lo, hi) instead of a chained comparison like lo < field(...) < hi"
)
_PAREN_HINT = "parenthesize each comparison, e.g. (field('a') == 1) & (field('b') > 2)"

# Mongo operator -> internal op.  Internal ops shared with the expression API:
# eq ne in nin gt gte lt lte all exists between contains.
_DICT_OPS = {
    "$eq": "eq", "$ne": "ne", "$in": "in", "$nin": "nin", "$gt": "gt", "$gte": "gte",
    "$lt": "lt", "$lte": "lte", "$all": "all", "$exists": "exists",
}
_CMP_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


# ---------------------------------------------------------------------------
# expression objects
# ---------------------------------------------------------------------------
class Expr:
    """A filter expression (unchecked: the schema is applied by `compile_filter`).

    Combine with ``&``, ``|`` and ``~``; Python's ``and``/``or``/``not`` raise TypeError.
    """

    __slots__ = ("_kind", "_field", "_op", "_label", "_arg", "_children")
    __array_ufunc__ = None  # numpy scalars on the left defer to our reflected operators

    def __init__(self, kind, field=None, op=None, label=None, arg=None, children=()):
        self._kind = kind          # "pred", "and", "or", "not"
        self._field = field
        self._op = op              # internal op, for "pred"
        self._label = label        # what the user wrote ("==", "$gt", ...), for messages
        self._arg = arg
        self._children = tuple(children)

    def __and__(self, other):
        return _combine("and", self, other, "&")

    def __rand__(self, other):
        return _combine("and", other, self, "&")

    def __or__(self, other):
        return _combine("or", self, other, "|")

    def __ror__(self, other):
        return _combine("or", other, self, "|")

    def __invert__(self):
        return Expr("not", children=(self,))

    def __bool__(self):
        raise TypeError(_BOOL_HINT)

    def __repr__(self):
        return _expr_repr(self, top=True)


def _combine(kind, a, b, symbol):
    for side in (a, b):
        if not isinstance(side, Expr):
            raise TypeError(
                f"cannot combine a filter expression with {type(side).__name__} using {symbol}: "
                f"both sides must be conditions built from vecdex.field(...); {_PAREN_HINT}")
    children = []
    for side in (a, b):
        children.extend(side._children if side._kind == kind else (side,))
    return Expr(kind, children=children)


def _check_operand(value, symbol):
    if isinstance(value, (Field, Expr)):
        raise TypeError(
            f"field(...) {symbol} {type(value).__name__}: a field can only be compared with a constant "
            f"value (comparing two fields is not supported); {_PAREN_HINT}")
    return value


def _pred(name, op, label, arg):
    return Expr("pred", field=name, op=op, label=label, arg=arg)


class Field:
    """A named attribute; its operators build filter expressions (see `field`)."""

    __slots__ = ("name",)
    __array_ufunc__ = None
    __hash__ = None  # == builds an expression, so fields are not hashable

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"field name must be a str, got {type(name).__name__}")
        if not name:
            raise ValueError("field name must not be empty")
        self.name = name

    def __repr__(self):
        return f"field({self.name!r})"

    # comparisons ---------------------------------------------------------
    def __eq__(self, value):
        return _pred(self.name, "eq", "==", _check_operand(value, "=="))

    def __ne__(self, value):
        return _pred(self.name, "ne", "!=", _check_operand(value, "!="))

    def __lt__(self, value):
        return _pred(self.name, "lt", "<", _check_operand(value, "<"))

    def __le__(self, value):
        return _pred(self.name, "lte", "<=", _check_operand(value, "<="))

    def __gt__(self, value):
        return _pred(self.name, "gt", ">", _check_operand(value, ">"))

    def __ge__(self, value):
        return _pred(self.name, "gte", ">=", _check_operand(value, ">="))

    # methods -------------------------------------------------------------
    def isin(self, values):
        """Matches when the value (any value, on keywords) is one of `values`."""
        return _pred(self.name, "in", "isin", _values(values, self.name, "isin"))

    def between(self, lo, hi):
        """lo <= value <= hi (int/float fields).  None leaves a side unbounded; lo > hi matches nothing."""
        return _pred(self.name, "between", "between",
                     (_check_operand(lo, "between"), _check_operand(hi, "between")))

    def contains(self, value):
        """Any value equals `value` (keywords); on single-valued fields the same as ==."""
        return _pred(self.name, "contains", "contains", _check_operand(value, "contains"))

    def contains_all(self, values):
        """The row holds every one of `values` (keyword/keywords fields)."""
        return _pred(self.name, "all", "contains_all", _values(values, self.name, "contains_all"))

    def exists(self):
        """The row has a value (keywords: at least one)."""
        return _pred(self.name, "exists", "exists", True)

    # misuse ----------------------------------------------------------------
    def _not_a_condition(self, *_):
        raise TypeError(
            f"{self!r} is a field, not a condition: compare it first (field('x') == 1, "
            f".isin([...]), .exists(), ...); {_PAREN_HINT}")

    __and__ = __rand__ = __or__ = __ror__ = __invert__ = __bool__ = _not_a_condition

    def __contains__(self, value):
        raise TypeError(f"use {self!r}.contains(value) instead of 'value in {self!r}'")

    def __iter__(self):
        raise TypeError(f"{self!r} is not iterable")


def field(name: str) -> Field:
    """A filter field: ``field("size_kb") >= 10``, ``field("tags").contains("x")``, ..."""
    return Field(name)


# ---------------------------------------------------------------------------
# structural helpers shared by both spellings (schema independent)
# ---------------------------------------------------------------------------
def _is_collection(value) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, range, np.ndarray))


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _values(values, name, label):
    """A snapshot tuple of the operand of in/nin/all; ValueError unless it is a list-like."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"field {name!r}, operator {label}: expects a list of values, "
                             f"got a {values.ndim}-d array")
        return tuple(values.tolist())
    if not _is_collection(values):
        raise ValueError(f"field {name!r}, operator {label}: expects a list of values, got {_describe(values)}")
    for v in values:
        _check_operand(v, label)
    return tuple(values)


# ---------------------------------------------------------------------------
# Mongo-style dicts -> Expr
# ---------------------------------------------------------------------------
def _parse(spec) -> Expr:
    if not isinstance(spec, Mapping):
        raise ValueError(f"a filter dict was expected, got {_describe(spec)}")
    parts = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise ValueError(f"filter keys must be field names or $-operators, got {_describe(key)}")
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{key} expects a non-empty list of filter dicts, got {_describe(value)}")
            subs = []
            for i, sub in enumerate(value):
                if not isinstance(sub, Mapping):
                    raise ValueError(f"{key}[{i}] must be a filter dict, got {_describe(sub)}")
                subs.append(_parse(sub))
            parts.append(Expr(key[1:], children=subs))
        elif key == "$not":
            if not isinstance(value, Mapping):
                raise ValueError(f"$not expects a filter dict, got {_describe(value)}")
            parts.append(Expr("not", children=(_parse(value),)))
        elif key.startswith("$"):
            raise ValueError(
                f"unknown operator {key!r} at the top level of a filter (supported there: $and, $or, $not; "
                f"comparison operators go inside a field, e.g. {{'size': {{'$gt': 1}}}})")
        else:
            parts.extend(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else Expr("and", children=parts)


def _parse_field(name, value) -> list:
    if isinstance(value, Mapping):
        keys = list(value)
        if not keys:
            raise ValueError(f"field {name!r}: empty operator dict {{}}; give a value or operators like $eq")
        if not all(isinstance(k, str) and k.startswith("$") for k in keys):
            raise ValueError(
                f"field {name!r}: a dict value must hold only $-operators (e.g. {{'$gte': 1}}), got keys "
                f"{keys!r}; matching embedded documents is not supported")
        out = []
        for op, arg in value.items():
            if op == "$not":
                if not isinstance(arg, Mapping) or not arg:
                    raise ValueError(f"field {name!r}, operator $not: expects a non-empty dict of operators, "
                                     f"e.g. {{'$not': {{'$gt': 5}}}}, got {_describe(arg)}")
                inner = _parse_field(name, arg)
                out.append(Expr("not", children=(inner[0] if len(inner) == 1 else Expr("and", children=inner),)))
            elif op in _DICT_OPS:
                internal = _DICT_OPS[op]
                if internal in ("in", "nin", "all"):
                    arg = _values(arg, name, op)
                out.append(_pred(name, internal, op, arg))
            else:
                raise ValueError(f"field {name!r}: unknown operator {op!r} (supported: "
                                 f"{', '.join(list(_DICT_OPS) + ['$not'])})")
        return out
    if _is_collection(value):
        raise ValueError(
            f"field {name!r}: a list value is ambiguous; to match any of several values write "
            f"{{{name!r}: {{'$in': [...]}}}} (or '$all' to require every value on a keywords field)")
    return [_pred(name, "eq", "$eq", value)]


# ---------------------------------------------------------------------------
# Expr -> canonical AST
# ---------------------------------------------------------------------------
def _check_schema(schema) -> dict:
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a dict field -> type name, got {type(schema).__name__}")
    for name, ftype in schema.items():
        if ftype not in FIELD_TYPES:
            raise ValueError(f"unknown type {ftype!r} for field {name!r}: expected one of {', '.join(FIELD_TYPES)}")
    return schema


def compile_filter(filter, schema):
    """Type-check `filter` (an expression, a Mongo-style dict or None) against `schema`
    (field -> type name) and return the canonical tuple AST.  ValueError names the field
    and the operator on any mistake; TypeError for something that is not a filter at all."""
    schema = _check_schema(schema)
    if filter is None:
        return _ALL
    if isinstance(filter, Expr):
        node = filter
    elif isinstance(filter, Mapping):
        node = _parse(filter)
    elif isinstance(filter, Field):
        raise TypeError(f"{filter!r} alone is not a filter: compare it, e.g. {filter!r} == 'x' or {filter!r}.exists()")
    else:
        raise TypeError(f"a filter must be a vecdex.field(...) expression, a dict or None, "
                        f"got {type(filter).__name__}")
    return _compile(node, schema)


def compile_filters(filter_or_list, schema, nq):
    """One filter for every query (returns one AST) or a list/tuple of exactly `nq`
    filters, one per query (returns a list of ASTs).  A single filter is never a list,
    so the two cases cannot be confused."""
    if isinstance(nq, (bool, np.bool_)) or not isinstance(nq, (int, np.integer)) or nq < 0:
        raise ValueError(f"nq must be a non-negative int, got {nq!r}")
    if isinstance(filter_or_list, (list, tuple)):
        if len(filter_or_list) != nq:
            raise ValueError(
                f"got a list of {len(filter_or_list)} filters for {int(nq)} queries: pass one filter "
                f"(applied to every query) or a list with exactly one filter per query")
        out = []
        for i, f in enumerate(filter_or_list):
            try:
                out.append(compile_filter(f, schema))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"filter {i} (of {int(nq)}): {exc}") from None
        return out
    return compile_filter(filter_or_list, schema)


def _compile(node: Expr, schema):
    kind = node._kind
    if kind == "and":
        return _and([_compile(c, schema) for c in node._children])
    if kind == "or":
        return _or([_compile(c, schema) for c in node._children])
    if kind == "not":
        return _not(_compile(node._children[0], schema))
    return _compile_pred(node._field, node._op, node._label, node._arg, schema)


_UNBOUNDED = "unbounded"   # a range side that every value satisfies
_NOMATCH = "nomatch"       # an operand no value of the field can satisfy / equal


def _compile_pred(name, op, label, arg, schema):
    if name not in schema:
        known = ", ".join(repr(f) for f in schema) or "none"
        raise ValueError(f"unknown field {name!r} in filter (operator {label}; known fields: {known})")
    ftype = schema[name]
    where = f"field {name!r} ({ftype}), operator {label}"

    if op in ("eq", "contains", "ne"):
        node = _eq(name, ftype, _value(ftype, arg, where))
        return _not(node) if op == "ne" else node
    if op in ("in", "nin"):
        values = []
        for v in arg:
            v = _canonical_eq(ftype, _value(ftype, v, where))
            if v is not _NOMATCH and v not in values:
                values.append(v)
        node = _NONE if not values else ("eq", name, values[0]) if len(values) == 1 else ("in", name, values)
        return _not(node) if op == "nin" else node
    if op in ("gt", "gte", "lt", "lte", "between"):
        if ftype not in _NUMERIC:
            raise ValueError(f"{where}: ordering comparisons need an int or float field")
        if op == "between":
            lo, hi = arg
            lo = _UNBOUNDED if lo is None else _lower(ftype, _value(ftype, lo, where), True)
            hi = _UNBOUNDED if hi is None else _upper(ftype, _value(ftype, hi, where), True)
        elif op in ("gt", "gte"):
            lo, hi = _lower(ftype, _value(ftype, arg, where), op == "gte"), _UNBOUNDED
        else:
            lo, hi = _UNBOUNDED, _upper(ftype, _value(ftype, arg, where), op == "lte")
        if lo is _NOMATCH or hi is _NOMATCH:
            return _NONE
        lo_v, lo_i = (None, False) if lo is _UNBOUNDED else lo
        hi_v, hi_i = (None, False) if hi is _UNBOUNDED else hi
        return _range(name, lo_v, hi_v, lo_i, hi_i)
    if op == "all":
        if ftype not in _STRINGS:
            raise ValueError(f"{where}: needs a keyword or keywords field")
        values = []
        for v in arg:
            v = _value(ftype, v, where)
            if v not in values:
                values.append(v)
        if not values:
            return ("exists", name)
        if len(values) == 1:
            return ("eq", name, values[0])
        return _NONE if ftype == "keyword" else ("all_of", name, values)
    if op == "exists":
        if not isinstance(arg, (bool, np.bool_)):
            raise ValueError(f"{where}: expects True or False, got {_describe(arg)}")
        return ("exists", name) if arg else ("not", ("exists", name))
    raise AssertionError(op)  # pragma: no cover - ops come from this module only


def _value(ftype, v, where):
    """The operand as a plain Python value of the field's kind (int fields: int or float)."""
    if v is None:
        raise ValueError(f"{where}: None is not a value; test for a missing value with "
                         f"field(...).exists() / {{'$exists': False}}")
    if _is_collection(v) or isinstance(v, Mapping):
        raise ValueError(f"{where}: expects a single value, got {_describe(v)}; "
                         f"use isin / $in to match any of several values")
    if ftype in _STRINGS:
        if isinstance(v, str):
            return str(v)
        raise ValueError(f"{where}: expects a string, got {_describe(v)}")
    if ftype == "bool":
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ValueError(f"{where}: bool fields accept only True or False, got {_describe(v)}")
    # int / float
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{where}: expects a number, got {_describe(v)} (bools are not numbers here)")
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            raise ValueError(f"{where}: NaN is not a valid value (it never compares equal or ordered)")
        return v
    raise ValueError(f"{where}: expects a number, got {_describe(v)}")


def _to_float(x: int) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _canonical_eq(ftype, v):
    """The value stored in an eq/in node, or _NOMATCH when no value of the field equals v."""
    if ftype == "int":
        if isinstance(v, float):
            if not v.is_integer():
                return _NOMATCH
            v = int(v)
        return v if _INT64_MIN <= v <= _INT64_MAX else _NOMATCH
    if ftype == "float" and isinstance(v, int):
        f = _to_float(v)
        return f if f == v else _NOMATCH
    return v


def _eq(name, ftype, v):
    v = _canonical_eq(ftype, v)
    return _NONE if v is _NOMATCH else ("eq", name, v)


def _lower(ftype, v, incl):
    """x > v (incl False) / x >= v (incl True) as (bound, incl), _UNBOUNDED or _NOMATCH."""
    if ftype == "int":
        if isinstance(v, float):
            if math.isinf(v):
                return _UNBOUNDED if v < 0 else _NOMATCH
            v, incl = (math.ceil(v) if incl else math.floor(v) + 1), True
        if v > _INT64_MAX or (v == _INT64_MAX and not incl):
            return _NOMATCH
        if v < _INT64_MIN or (v == _INT64_MIN and incl):
            return _UNBOUNDED
        return v, incl
    if isinstance(v, int):  # float field, int operand: the smallest float >= v if v is not exact
        f = _to_float(v)
        if f == v:
            return f, incl
        return (f if f > v else math.nextafter(f, math.inf)), True
    return v, incl


def _upper(ftype, v, incl):
    """x < v (incl False) / x <= v (incl True) as (bound, incl), _UNBOUNDED or _NOMATCH."""
    if ftype == "int":
        if isinstance(v, float):
            if math.isinf(v):
                return _UNBOUNDED if v > 0 else _NOMATCH
            v, incl = (math.floor(v) if incl else math.ceil(v) - 1), True
        if v < _INT64_MIN or (v == _INT64_MIN and not incl):
            return _NOMATCH
        if v > _INT64_MAX or (v == _INT64_MAX and incl):
            return _UNBOUNDED
        return v, incl
    if isinstance(v, int):
        f = _to_float(v)
        if f == v:
            return f, incl
        return (f if f < v else math.nextafter(f, -math.inf)), True
    return v, incl


# ---------------------------------------------------------------------------
# simplifying constructors
# ---------------------------------------------------------------------------
def _range(name, lo, hi, lo_incl, hi_incl):
    if lo is None and hi is None:
        return ("exists", name)
    if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_incl and hi_incl))):
        return _NONE
    return ("range", name, lo, hi, bool(lo_incl) if lo is not None else False,
            bool(hi_incl) if hi is not None else False)


def _merge_ranges(children):
    """Intersect the ranges on one field among the children of an and."""
    by_field = {}
    for c in children:
        if c[0] == "range":
            by_field.setdefault(c[1], []).append(c)
    if all(len(v) < 2 for v in by_field.values()):
        return children
    out = []
    done = set()
    for c in children:
        if c[0] != "range" or len(by_field[c[1]]) < 2:
            out.append(c)
            continue
        if c[1] in done:
            continue
        done.add(c[1])
        lo, lo_i, hi, hi_i = None, False, None, False
        for _, _, a, b, a_i, b_i in by_field[c[1]]:
            # a tighter bound wins; at an equal bound an exclusive side wins
            if a is not None and (lo is None or a > lo or (a == lo and not a_i)):
                lo, lo_i = a, a_i
            if b is not None and (hi is None or b < hi or (b == hi and not b_i)):
                hi, hi_i = b, b_i
        out.append(_range(c[1], lo, hi, lo_i, hi_i))
    return out


def _and(children):
    flat = []
    for c in children:
        if c[0] == "and":
            flat.extend(c[1])
        elif c == _NONE:
            return _NONE
        elif c != _ALL:
            flat.append(c)
    flat = _merge_ranges(flat)
    if _NONE in flat:
        return _NONE
    if not flat:
        return _ALL
    return flat[0] if len(flat) == 1 else ("and", flat)


def _or(children):
    flat = []
    for c in children:
        if c[0] == "or":
            flat.extend(c[1])
        elif c == _ALL:
            return _ALL
        elif c != _NONE:
            flat.append(c)
    if not flat:
        return _NONE
    return flat[0] if len(flat) == 1 else ("or", flat)


def _not(node):
    if node == _ALL:
        return _NONE
    if node == _NONE:
        return _ALL
    if node[0] == "not":
        return node[1]
    return ("not", node)


# ---------------------------------------------------------------------------
# repr
# ---------------------------------------------------------------------------
def _expr_repr(e: Expr, top: bool) -> str:
    kind = e._kind
    if kind in ("and", "or"):
        if not e._children:
            return "<all rows>" if kind == "and" else "<no rows>"
        text = (" & " if kind == "and" else " | ").join(_expr_repr(c, False) for c in e._children)
        return text if top or len(e._children) == 1 else f"({text})"
    if kind == "not":
        return "~" + _expr_repr(e._children[0], False)
    f, op, arg = f"field({e._field!r})", e._op, e._arg
    if op in _CMP_SYMBOLS:
        text = f"{f} {_CMP_SYMBOLS[op]} {arg!r}"
        return text if top else f"({text})"
    if op in ("in", "nin"):
        return ("~" if op == "nin" else "") + f"{f}.isin({list(arg)!r})"
    if op == "between":
        return f"{f}.between({arg[0]!r}, {arg[1]!r})"
    if op == "contains":
        return f"{f}.contains({arg!r})"
    if op == "all":
        return f"{f}.contains_all({list(arg)!r})"
    if op == "exists":
        return f"{f}.exists()" if arg is True else (f"~{f}.exists()" if arg is False else f"{f}.exists({arg!r})")
    return f"{f}.{op}({arg!r})"  # pragma: no cover
