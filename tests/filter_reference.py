"""Pure-Python reference semantics of the canonical filter AST (see the filter spec).

``matches(ast, row, schema)`` evaluates one AST node on one row, a dict field ->
Python value where an absent key or None means missing (and, for ``keywords``,
an empty list holds no value, so it is missing as well):

* a missing value matches no comparison (eq, in, all_of, range); ``exists`` is
  false for it;
* ``not`` is plain set complement, so it does match missing rows;
* on ``keywords`` rows eq/in match when ANY value matches, all_of when the row
  holds every value; on ``keyword`` rows all_of needs the one value to equal all;
* numbers compare mathematically (Python int/float comparisons are exact).

``check_canonical(ast, schema)`` asserts the AST's shape and that every value
is a plain Python value of the field's type, as the native core expects.
``filter_rows(ast, rows, schema)`` returns the indices of matching rows.

Nothing here imports vecdex, so any test can use it as an oracle.
"""
from __future__ import annotations

import math

_KINDS = ("all", "none", "and", "or", "not", "eq", "in", "all_of", "range", "exists")


def _present(value, ftype) -> bool:
    if value is None:
        return False
    if ftype == "keywords":
        return len(value) > 0
    return True


def _equals(row_value, v, ftype) -> bool:
    if ftype == "keywords":
        return any(x == v for x in row_value)
    if ftype == "bool":
        return bool(row_value) is v
    return row_value == v


def matches(ast, row: dict, schema) -> bool:
    """Whether `row` satisfies the canonical filter `ast`."""
    kind = ast[0]
    if kind == "all":
        return True
    if kind == "none":
        return False
    if kind == "and":
        return all(matches(c, row, schema) for c in ast[1])
    if kind == "or":
        return any(matches(c, row, schema) for c in ast[1])
    if kind == "not":
        return not matches(ast[1], row, schema)
    if kind not in _KINDS:
        raise ValueError(f"unknown AST node {kind!r}")
    name = ast[1]
    ftype = schema[name]
    value = row.get(name)
    if kind == "exists":
        return _present(value, ftype)
    if not _present(value, ftype):
        return False
    if kind == "eq":
        return _equals(value, ast[2], ftype)
    if kind == "in":
        return any(_equals(value, v, ftype) for v in ast[2])
    if kind == "all_of":
        if ftype == "keywords":
            return all(v in value for v in ast[2])
        return all(value == v for v in ast[2])
    # range
    _, _, lo, hi, lo_incl, hi_incl = ast
    if lo is not None and not (value >= lo if lo_incl else value > lo):
        return False
    if hi is not None and not (value <= hi if hi_incl else value < hi):
        return False
    return True


def filter_rows(ast, rows, schema) -> list:
    """Indices of the rows that match `ast`."""
    return [i for i, row in enumerate(rows) if matches(ast, row, schema)]


def check_canonical(ast, schema) -> None:
    """AssertionError unless `ast` is a well-formed canonical AST for `schema`."""
    assert isinstance(ast, tuple) and ast and ast[0] in _KINDS, ast
    kind = ast[0]
    if kind in ("all", "none"):
        assert len(ast) == 1, ast
        return
    if kind in ("and", "or"):
        assert len(ast) == 2 and type(ast[1]) is list, ast
        for c in ast[1]:
            check_canonical(c, schema)
        return
    if kind == "not":
        assert len(ast) == 2, ast
        check_canonical(ast[1], schema)
        return
    name = ast[1]
    assert type(name) is str and name in schema, ast
    ftype = schema[name]

    def ok_value(v):
        if ftype in ("keyword", "keywords"):
            return type(v) is str
        if ftype == "bool":
            return type(v) is bool
        if type(v) is float:
            return not math.isnan(v)
        return type(v) is int

    if kind == "exists":
        assert len(ast) == 2, ast
    elif kind == "eq":
        assert len(ast) == 3 and ok_value(ast[2]), ast
    elif kind in ("in", "all_of"):
        assert len(ast) == 3 and type(ast[2]) is list and all(ok_value(v) for v in ast[2]), ast
        if kind == "all_of":
            assert ftype in ("keyword", "keywords"), ast
    else:  # range
        assert len(ast) == 6 and ftype in ("int", "float"), ast
        assert ast[2] is None or ok_value(ast[2]), ast
        assert ast[3] is None or ok_value(ast[3]), ast
        assert type(ast[4]) is bool and type(ast[5]) is bool, ast
