"""The pure-Python filter layer: expressions and Mongo-style dicts -> canonical AST.

Both spellings are compiled and the ASTs are evaluated with the reference
evaluator (tests/filter_reference.py) over random rows; hypothesis also builds
random (expression, dict, oracle) triples, where the oracle is a plain Python
predicate written straight from the spec's semantics, so the compiler's
simplifications (range merging, int/float bound normalisation, ...) are checked
against something that does not share its code.

Import: ``vecdex/__init__`` imports the compiled extension, which a source
checkout (PYTHONPATH=python) may not have built yet, while ``filters.py`` is
pure Python.  So the repository's ``python/vecdex/filters.py`` is loaded by file
path under a private module name (never registered as ``vecdex.filters``, so it
cannot shadow the real package for other tests in the session); only when that
file is absent (tests run against an installed wheel) is ``vecdex.filters``
imported normally.
"""
from __future__ import annotations

import ast as pyast
import importlib.util
import math
import random
from pathlib import Path

import numpy as np
import pytest

from filter_reference import check_canonical, filter_rows, matches

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
_FILTERS_PY = _REPO / "python" / "vecdex" / "filters.py"


def _load_filters():
    if _FILTERS_PY.exists():
        spec = importlib.util.spec_from_file_location("_vecdex_filters_under_test", _FILTERS_PY)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    from vecdex import filters  # pragma: no cover - installed-package layout

    return filters


F = _load_filters()
field = F.field
compile_filter = F.compile_filter
compile_filters = F.compile_filters

SCHEMA = {"section": "keyword", "tags": "keywords", "size_kb": "int", "score": "float", "free": "bool"}
TAGS = ["a", "b", "c", "d"]
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1
INF = math.inf
MAXF = 1.7976931348623157e308


def _make_rows(n, seed):
    rng = random.Random(seed)
    rows = [{}]  # every field missing
    for _ in range(n):
        row = {}
        if rng.random() < 0.9:
            row["section"] = rng.choice(["a", "b", "c", None])
        if rng.random() < 0.9:
            row["tags"] = rng.choice([None, []] + [sorted(rng.sample(TAGS, k)) for k in (1, 1, 2, 2, 3, 4)])
        if rng.random() < 0.9:
            row["size_kb"] = rng.choice([None, I64_MIN, I64_MAX, 2 ** 53 + 1] + list(range(-4, 5)))
        if rng.random() < 0.9:
            row["score"] = rng.choice([None, -INF, INF, MAXF, -MAXF, 2.0 ** 53, 2.0 ** 53 + 2, -0.0,
                                       -2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 2.5, rng.uniform(-3, 3)])
        if rng.random() < 0.9:
            row["free"] = rng.choice([None, True, False])
        rows.append(row)
    return rows


ROWS = _make_rows(160, seed=7)


def same_rows(a, b, rows=ROWS):
    check_canonical(a, SCHEMA)
    check_canonical(b, SCHEMA)
    return filter_rows(a, rows, SCHEMA) == filter_rows(b, rows, SCHEMA)


# ---------------------------------------------------------------------------
# the oracle: spec semantics on raw operands, independent of filters.py
# ---------------------------------------------------------------------------
def _present(row, name):
    v = row.get(name)
    return v is not None and not (SCHEMA[name] == "keywords" and len(v) == 0)


def _eq(row, name, x):
    if not _present(row, name):
        return False
    v = row[name]
    if SCHEMA[name] == "keywords":
        return any(t == x for t in v)
    if SCHEMA[name] == "bool":
        return v is bool(x)
    return v == x  # int/float: Python compares numbers exactly


def _py(v):
    """numpy scalars -> the exactly equal Python value (so the oracle compares exactly)."""
    return v.item() if isinstance(v, np.generic) else v


def oracle(op, name, arg):
    arg = tuple(_py(v) for v in arg) if isinstance(arg, (list, tuple)) else _py(arg)
    if op == "eq":
        return lambda r: _eq(r, name, arg)
    if op == "ne":
        return lambda r: not _eq(r, name, arg)
    if op == "in":
        return lambda r: any(_eq(r, name, x) for x in arg)
    if op == "nin":
        return lambda r: not any(_eq(r, name, x) for x in arg)
    if op == "all":
        return lambda r: _present(r, name) and all(_eq(r, name, x) for x in arg)
    if op == "exists":
        return lambda r: _present(r, name) == arg
    cmp = {"gt": lambda v: v > arg, "gte": lambda v: v >= arg, "lt": lambda v: v < arg,
           "lte": lambda v: v <= arg, "between": lambda v: arg[0] <= v <= arg[1]}[op]
    return lambda r: _present(r, name) and cmp(r[name])


# ---------------------------------------------------------------------------
# hypothesis: random (expression, mongo dict, oracle) triples
# ---------------------------------------------------------------------------
def _maybe_np(draw, v):
    """Sometimes turn an operand into the equivalent numpy scalar."""
    if not draw(st.booleans()):
        return v
    if isinstance(v, bool):
        return np.bool_(v)
    if isinstance(v, str):
        return np.str_(v)
    if isinstance(v, int) and I64_MIN <= v <= I64_MAX:
        return np.int64(v)
    if isinstance(v, float) and float(np.float32(v)) == v:
        return np.float32(v)
    return v


def _operand(draw, name):
    ftype = SCHEMA[name]
    if ftype in ("keyword", "keywords"):
        v = draw(st.sampled_from(["a", "b", "c", "d", "zz"]))
    elif ftype == "bool":
        v = draw(st.booleans())
    elif ftype == "int":
        v = draw(st.one_of(st.integers(-5, 5),
                           st.sampled_from([-2.5, -1.0, 0.5, 1.5, 2.0, 2.5, 3.0, 1e30, -1e30, INF, -INF,
                                            I64_MAX, I64_MIN, 2 ** 70, -(2 ** 70), 2 ** 53 + 1, 9.2e18]),
                           st.floats(-6, 6, allow_nan=False)))
    else:
        v = draw(st.one_of(st.floats(-3, 3, allow_nan=False),
                           st.integers(-3, 3),
                           st.sampled_from([-INF, INF, 0.5, 2.5, -0.0, 2 ** 53 + 1, -(2 ** 53 + 1),
                                            2 ** 53, 10 ** 400, -(10 ** 400), MAXF])))
    return _maybe_np(draw, v)


@st.composite
def leaf(draw):
    name = draw(st.sampled_from(sorted(SCHEMA)))
    ftype = SCHEMA[name]
    ops = ["eq", "ne", "in", "nin", "exists", "not_exists", "contains"]
    if ftype in ("int", "float"):
        ops += ["gt", "gte", "lt", "lte", "between"]
    if ftype in ("keyword", "keywords"):
        ops += ["all"]
    op = draw(st.sampled_from(ops))
    f = field(name)
    if op in ("in", "nin", "all"):
        values = [_operand(draw, name) for _ in range(draw(st.integers(0, 3)))]
        listy = draw(st.sampled_from([list, tuple]))(values)
        mongo_op = {"in": "$in", "nin": "$nin", "all": "$all"}[op]
        expr = {"in": lambda: f.isin(listy), "nin": lambda: ~f.isin(listy),
                "all": lambda: f.contains_all(listy)}[op]()
        return expr, {name: {mongo_op: list(values)}}, oracle(op, name, values)
    if op in ("exists", "not_exists"):
        flag = op == "exists"
        return (f.exists() if flag else ~f.exists()), {name: {"$exists": flag}}, oracle("exists", name, flag)
    if op == "between":
        lo, hi = _operand(draw, name), _operand(draw, name)
        return f.between(lo, hi), {name: {"$gte": lo, "$lte": hi}}, oracle("between", name, (lo, hi))
    v = _operand(draw, name)
    if op in ("eq", "contains"):
        expr = f.contains(v) if op == "contains" else (f == v if draw(st.booleans()) else v == f)
        mongo = {name: v} if draw(st.booleans()) else {name: {"$eq": v}}
        return expr, mongo, oracle("eq", name, v)
    if op == "ne":
        expr = (f != v) if draw(st.booleans()) else ~(f == v)
        return expr, {name: {"$ne": v}}, oracle("ne", name, v)
    sym = {"gt": f.__gt__, "gte": f.__ge__, "lt": f.__lt__, "lte": f.__le__}[op]
    return sym(v), {name: {"$" + op: v}}, oracle(op, name, v)


def _extend(children):
    @st.composite
    def combine(draw):
        kind = draw(st.sampled_from(["and", "and", "or", "not"]))
        if kind == "not":
            e, m, o = draw(children)
            only_field_ops = (len(m) == 1 and not next(iter(m)).startswith("$")
                              and isinstance(next(iter(m.values())), dict))
            if only_field_ops and draw(st.booleans()):
                (name, ops), = m.items()
                mongo = {name: {"$not": ops}}  # field-level $not
            else:
                mongo = {"$not": m}
            return ~e, mongo, (lambda r: not o(r))
        (e1, m1, o1), (e2, m2, o2) = draw(children), draw(children)
        if kind == "or":
            return e1 | e2, {"$or": [m1, m2]}, (lambda r: o1(r) or o2(r))
        if not (set(m1) & set(m2)) and draw(st.booleans()):
            mongo = {**m1, **m2}  # several keys ANDed
        elif (len(m1) == len(m2) == 1 and set(m1) == set(m2) and not next(iter(m1)).startswith("$")
              and all(isinstance(d, dict) for d in (*m1.values(), *m2.values()))
              and not set(*m1.values()) & set(*m2.values())):
            ((name, a),), ((_, b),) = m1.items(), m2.items()
            mongo = {name: {**a, **b}}  # several operators on one field ANDed
        else:
            mongo = {"$and": [m1, m2]}
        return e1 & e2, mongo, (lambda r: o1(r) and o2(r))

    return combine()


triples = st.recursive(leaf(), _extend, max_leaves=8)

row_strategy = st.fixed_dictionaries({}, optional={
    "section": st.sampled_from(["a", "b", "zz", None]),
    "tags": st.one_of(st.none(), st.lists(st.sampled_from(TAGS + ["zz"]), max_size=3, unique=True)),
    "size_kb": st.one_of(st.none(), st.integers(-6, 6), st.sampled_from([I64_MIN, I64_MAX])),
    "score": st.one_of(st.none(), st.floats(allow_nan=False), st.sampled_from([2.0 ** 53, 0.5, -0.0])),
    "free": st.one_of(st.none(), st.booleans()),
})


@settings(max_examples=max(300, settings.default.max_examples))
@given(triples, st.lists(row_strategy, max_size=6))
def test_random_expressions_match_dicts_and_oracle(triple, extra_rows):
    expr, mongo, want = triple
    a_expr = compile_filter(expr, SCHEMA)
    a_dict = compile_filter(mongo, SCHEMA)
    check_canonical(a_expr, SCHEMA)
    check_canonical(a_dict, SCHEMA)
    repr(expr)
    for row in ROWS + extra_rows:
        expected = want(row)
        assert matches(a_expr, row, SCHEMA) == expected, (expr, a_expr, row)
        assert matches(a_dict, row, SCHEMA) == expected, (mongo, a_dict, row)


# ---------------------------------------------------------------------------
# both spellings, hand-written
# ---------------------------------------------------------------------------
PAIRS = [
    (field("section") == "python", {"section": "python"}),
    (field("section") == "a", {"section": {"$eq": "a"}}),
    (field("section") != "a", {"section": {"$ne": "a"}}),
    (field("section").isin(["a", "b"]), {"section": {"$in": ["a", "b"]}}),
    (~field("section").isin(["a", "b"]), {"section": {"$nin": ["a", "b"]}}),
    (field("tags").contains("a"), {"tags": "a"}),
    (field("tags") == "a", {"tags": {"$in": ["a"]}}),
    (field("tags").contains_all(["a", "b"]), {"tags": {"$all": ["a", "b"]}}),
    (field("tags").exists(), {"tags": {"$exists": True}}),
    (~field("tags").exists(), {"tags": {"$exists": False}}),
    (field("size_kb").between(-1, 2), {"size_kb": {"$gte": -1, "$lte": 2}}),
    ((field("size_kb") >= 0) & (field("size_kb") < 3), {"size_kb": {"$gte": 0, "$lt": 3}}),
    (field("size_kb") > 2.5, {"size_kb": {"$gte": 3}}),
    (field("score") <= 0.5, {"score": {"$lte": 0.5}}),
    (field("free") == True, {"free": True}),  # noqa: E712
    ((field("section") == "a") & (field("free") == False), {"section": "a", "free": False}),  # noqa: E712
    ((field("section") == "a") | ~(field("size_kb") > 1),
     {"$or": [{"section": "a"}, {"$not": {"size_kb": {"$gt": 1}}}]}),
    (~((field("section") == "a") & (field("tags") == "b")), {"$not": {"section": "a", "tags": "b"}}),
    (~(field("size_kb") > 1), {"size_kb": {"$not": {"$gt": 1}}}),
    ((field("section") == "a") & field("size_kb").between(0, 3) & ~field("tags").contains("c"),
     {"$and": [{"section": "a"}, {"size_kb": {"$gte": 0, "$lte": 3}}, {"$not": {"tags": "c"}}]}),
]


@pytest.mark.parametrize("expr,mongo", PAIRS, ids=[repr(p[0]) for p in PAIRS])
def test_pairs_are_equivalent(expr, mongo):
    assert same_rows(compile_filter(expr, SCHEMA), compile_filter(mongo, SCHEMA))


def test_spec_example_semantics():
    expr = (field("section") == "a") & field("size_kb").between(0, 3) & ~field("tags").contains("c")
    got = filter_rows(compile_filter(expr, SCHEMA), ROWS, SCHEMA)
    want = [i for i, r in enumerate(ROWS)
            if r.get("section") == "a" and r.get("size_kb") is not None and 0 <= r["size_kb"] <= 3
            and "c" not in (r.get("tags") or [])]
    assert got == want and want  # non-trivial


# ---------------------------------------------------------------------------
# canonical AST shapes and simplifications
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("filt,expected", [
    (None, ("all",)),
    ({}, ("all",)),
    (field("section") == "a", ("eq", "section", "a")),
    ({"section": "a"}, ("eq", "section", "a")),
    ({"$and": [{"section": "a"}]}, ("eq", "section", "a")),  # and of one child -> the child
    ({"$or": [{"section": "a"}]}, ("eq", "section", "a")),
    (field("section") != "a", ("not", ("eq", "section", "a"))),
    ({"section": {"$ne": "a"}}, ("not", ("eq", "section", "a"))),
    ({"section": {"$nin": ["a", "b"]}}, ("not", ("in", "section", ["a", "b"]))),
    (~~(field("section") == "a"), ("eq", "section", "a")),
    (field("section").isin(["a", "a", "b"]), ("in", "section", ["a", "b"])),
    (field("section").isin(["a"]), ("eq", "section", "a")),
    (field("section").isin([]), ("none",)),
    (~field("section").isin([]), ("all",)),
    ({"section": {"$in": []}, "free": True}, ("none",)),
    ({"$or": [{"section": {"$in": []}}, {"free": True}]}, ("eq", "free", True)),
    (field("size_kb").between(5, 1), ("none",)),  # lo > hi: documented as ("none",)
    (field("size_kb").between(3, 3), ("range", "size_kb", 3, 3, True, True)),
    (field("size_kb").between(2.2, 2.8), ("none",)),
    (field("size_kb").between(None, 4), ("range", "size_kb", None, 4, False, True)),
    ({"size_kb": {"$gte": 10, "$lt": 500}}, ("range", "size_kb", 10, 500, True, False)),
    ((field("size_kb") > 1) & (field("section") == "a") & (field("size_kb") <= 9) & (field("size_kb") > 2),
     ("and", [("range", "size_kb", 2, 9, False, True), ("eq", "section", "a")])),
    ((field("size_kb") > 5) & (field("size_kb") < 5), ("none",)),
    ((field("size_kb") >= 5) & (field("size_kb") > 5) & (field("size_kb") <= 7),
     ("range", "size_kb", 5, 7, False, True)),
    ({"$and": [{"score": {"$gt": 1}}, {"$and": [{"score": {"$lt": 2}}, {"free": True}]}]},
     ("and", [("range", "score", 1.0, 2.0, False, False), ("eq", "free", True)])),
    ((field("size_kb") >= 5) & (field("size_kb") <= 5), ("range", "size_kb", 5, 5, True, True)),
    ((field("score") > 1) & ((field("score") < 2) & (field("free") == True)),  # noqa: E712
     ("and", [("range", "score", 1.0, 2.0, False, False), ("eq", "free", True)])),
    ((field("size_kb") != 2.5) & (field("section") == "a"), ("eq", "section", "a")),  # all dropped from and
    ((field("size_kb") == 2.5) | (field("section") == "a"), ("eq", "section", "a")),  # none dropped from or
    ((field("size_kb") != 2.5) | (field("section") == "a"), ("all",)),
    (field("size_kb") > 2.5, ("range", "size_kb", 3, None, True, False)),
    (field("size_kb") < 2.5, ("range", "size_kb", None, 2, False, True)),
    (field("size_kb") == 2.0, ("eq", "size_kb", 2)),
    (field("size_kb") == 2.5, ("none",)),
    (field("size_kb") != 2.5, ("all",)),
    (field("size_kb") > 2 ** 70, ("none",)),
    (field("size_kb") < 2 ** 70, ("exists", "size_kb")),
    (field("size_kb") > -math.inf, ("exists", "size_kb")),
    (field("size_kb").isin([1, 2.5, 2 ** 70, 3.0]), ("in", "size_kb", [1, 3])),
    (field("score") == 1, ("eq", "score", 1.0)),
    (field("score") == 2 ** 53 + 1, ("none",)),
    (field("score") > 2 ** 53 + 1, ("range", "score", 2.0 ** 53 + 2, None, True, False)),
    (field("score").between(1, 2), ("range", "score", 1.0, 2.0, True, True)),
    (field("tags").contains_all(["a"]), ("eq", "tags", "a")),
    (field("tags").contains_all(["a", "b", "a"]), ("all_of", "tags", ["a", "b"])),
    (field("tags").contains_all([]), ("exists", "tags")),
    (field("section").contains_all(["a", "b"]), ("none",)),
    (field("section").contains_all(["a", "a"]), ("eq", "section", "a")),
    (field("section").contains("a"), ("eq", "section", "a")),
    (field("free").exists() | (field("free") == True), ("or", [("exists", "free"), ("eq", "free", True)])),  # noqa
    ({"free": {"$exists": False}}, ("not", ("exists", "free"))),
])
def test_canonical_ast(filt, expected):
    got = compile_filter(filt, SCHEMA)
    check_canonical(got, SCHEMA)
    assert got == expected
    assert same_rows(got, expected)


def test_numpy_scalars_become_python_values():
    cases = [
        (field("size_kb") == np.int64(7), int, 7),
        (field("size_kb") == np.uint8(7), int, 7),
        (field("size_kb") == np.float32(7.0), int, 7),
        (field("score") == np.float32(0.5), float, 0.5),
        (field("score") == np.int32(2), float, 2.0),
        (field("section") == np.str_("a"), str, "a"),
        (field("free") == np.bool_(True), bool, True),
        ({"free": np.bool_(False)}, bool, False),
    ]
    for filt, typ, value in cases:
        got = compile_filter(filt, SCHEMA)
        assert got[0] == "eq" and type(got[2]) is typ and got[2] == value, (filt, got)
    got = compile_filter(field("size_kb").isin(np.array([1, 2], dtype=np.int32)), SCHEMA)
    assert got == ("in", "size_kb", [1, 2]) and all(type(v) is int for v in got[2])
    got = compile_filter({"score": {"$gt": np.float64(1.5), "$lt": np.int16(3)}}, SCHEMA)
    assert got == ("range", "score", 1.5, 3.0, False, False) and type(got[3]) is float
    # numpy scalars on the left defer to the field's reflected operators
    assert compile_filter(np.int64(3) < field("size_kb"), SCHEMA) == ("range", "size_kb", 3, None, False, False)
    assert compile_filter(np.float64(0.5) >= field("score"), SCHEMA) == ("range", "score", None, 0.5, False, True)


INT_ROWS = [{"size_kb": v} for v in [I64_MIN, I64_MIN + 1, -4, -3, -2, -1, 0, 1, 2, 3, 4, 2 ** 53 + 1,
                                      I64_MAX - 1, I64_MAX, None]]
FLOAT_ROWS = [{"score": v} for v in [-INF, -MAXF, -(2.0 ** 53 + 2), -(2.0 ** 53), -2.5, -0.0, 0.0, 0.5, 2.0,
                                      2.5, 2.0 ** 53, 2.0 ** 53 + 2, MAXF, INF, None]]
_OPS = {">": lambda f, v: f > v, ">=": lambda f, v: f >= v, "<": lambda f, v: f < v,
        "<=": lambda f, v: f <= v, "==": lambda f, v: f == v, "!=": lambda f, v: f != v}


@pytest.mark.parametrize("sym", sorted(_OPS))
def test_numeric_bounds_compare_mathematically(sym):
    """Float operands on int fields and huge ints on float fields: the normalised AST
    agrees with Python's exact comparison of the raw operand."""
    build = _OPS[sym]
    int_operands = [-INF, -1e30, -2.5, -2.0, -0.5, 0.0, 0.5, 2.5, 3.0, 9.3e18, 1e30, INF, I64_MIN, I64_MIN - 1,
                    I64_MAX, I64_MAX + 1, 2 ** 70, -(2 ** 70), 2, -3]
    float_operands = [2 ** 53 + 1, -(2 ** 53 + 1), 2 ** 53, 10 ** 400, -(10 ** 400), 2 ** 1024 - 1, 3, 0, -INF,
                      INF, 0.5, -0.0]
    for name, rows, operands in (("size_kb", INT_ROWS, int_operands), ("score", FLOAT_ROWS, float_operands)):
        for v in operands:
            got = compile_filter(build(field(name), v), SCHEMA)
            check_canonical(got, SCHEMA)
            want = oracle({">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "!=": "ne"}[sym], name, v)
            for row in rows:
                assert matches(got, row, SCHEMA) == want(row), (name, sym, v, got, row)


def test_repr_is_readable():
    e = (field("section") == "python") & field("size_kb").between(10, 500) & ~field("tags").contains("x")
    assert repr(e) == ("(field('section') == 'python') & field('size_kb').between(10, 500) & "
                       "~field('tags').contains('x')")
    e2 = (field("a") > 1) | ~((field("b") == "x") & field("c").isin([1, 2])) | ~field("d").exists()
    assert repr(e2) == ("(field('a') > 1) | ~((field('b') == 'x') & field('c').isin([1, 2])) | "
                        "~field('d').exists()")
    assert repr(field("x") != 3) == "field('x') != 3"
    assert repr(field("x")) == "field('x')"
    # the repr is valid Python that builds the same filter
    assert same_rows(compile_filter(eval(repr(e), {"field": field}), SCHEMA), compile_filter(e, SCHEMA))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def _assert_raises(exc, build, *needles):
    with pytest.raises(exc) as info:
        filt = build()
        compile_filter(filt, SCHEMA)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


VALUE_ERRORS = [
    # unknown field
    (lambda: field("nope") == 1, "'nope'", "unknown field"),
    (lambda: {"nope": {"$gt": 1}}, "'nope'", "unknown field"),
    # string vs number field, number vs keyword field
    (lambda: field("size_kb") == "5", "size_kb", "=="),
    (lambda: {"score": {"$gt": "1"}}, "score", "$gt"),
    (lambda: field("section") == 5, "section", "=="),
    (lambda: {"tags": {"$in": ["a", 1]}}, "tags", "$in"),
    (lambda: field("tags").contains(3.5), "tags", "contains"),
    # bool fields only take bools; numbers reject bools
    (lambda: field("free") == 1, "free", "=="),
    (lambda: {"free": {"$eq": np.int64(0)}}, "free", "$eq"),
    (lambda: {"free": "true"}, "free", "$eq"),
    (lambda: field("size_kb") == True, "size_kb", "==", "bool"),  # noqa: E712
    (lambda: {"score": {"$lt": np.bool_(True)}}, "score", "$lt"),
    (lambda: field("size_kb").isin([1, False]), "size_kb", "isin"),
    # NaN
    (lambda: field("score") == float("nan"), "score", "==", "NaN"),
    (lambda: {"size_kb": {"$gt": np.nan}}, "size_kb", "$gt", "NaN"),
    (lambda: field("score").isin([1.0, np.float32("nan")]), "score", "isin", "NaN"),
    (lambda: field("score").between(float("nan"), 1), "score", "between", "NaN"),
    # ordering only on numbers
    (lambda: field("section") > "a", "section", ">"),
    (lambda: {"free": {"$gte": True}}, "free", "$gte"),
    (lambda: field("tags").between("a", "b"), "tags", "between"),
    # $all / contains_all only on keyword(s)
    (lambda: field("size_kb").contains_all([1]), "size_kb", "contains_all"),
    (lambda: {"free": {"$all": [True]}}, "free", "$all"),
    # non-list operands
    (lambda: {"section": {"$in": "abc"}}, "section", "$in"),
    (lambda: field("section").isin("abc"), "section", "isin"),
    (lambda: {"tags": {"$all": "a"}}, "tags", "$all"),
    (lambda: {"size_kb": {"$nin": 5}}, "size_kb", "$nin"),
    (lambda: field("tags").contains_all("ab"), "tags", "contains_all"),
    (lambda: field("size_kb").isin(np.zeros((2, 2))), "size_kb", "isin"),
    # a list where one value is expected
    (lambda: {"section": ["a", "b"]}, "section", "$in"),
    (lambda: {"tags": ("a",)}, "tags", "$in"),
    (lambda: field("section") == ["a"], "section", "=="),
    (lambda: {"tags": {"$eq": ["a"]}}, "tags", "$eq"),
    # None is not a value
    (lambda: field("section") == None, "section", "==", "exists"),  # noqa: E711
    (lambda: {"section": None}, "section", "$eq"),
    # unknown operators
    (lambda: {"size_kb": {"$regex": "x"}}, "size_kb", "$regex"),
    (lambda: {"$nor": [{"section": "a"}]}, "$nor"),
    (lambda: {"size_kb": {"gt": 5}}, "size_kb", "gt"),
    (lambda: {"size_kb": {"$gt": 1, "lt": 5}}, "size_kb"),
    (lambda: {"section": {}}, "section"),
    (lambda: {"size_kb": {"$and": [{"$gt": 1}]}}, "size_kb", "$and"),
    # malformed $and / $or / $not / $exists
    (lambda: {"$and": []}, "$and"),
    (lambda: {"$or": {"section": "a"}}, "$or"),
    (lambda: {"$and": [{"section": "a"}, 1]}, "$and"),
    (lambda: {"$or": "section"}, "$or"),
    (lambda: {"$or": [[{"section": "a"}]]}, "$or"),
    (lambda: {"$not": 5}, "$not"),
    (lambda: {"$not": [{"section": "a"}]}, "$not"),
    (lambda: {"size_kb": {"$not": 5}}, "size_kb", "$not"),
    (lambda: {"size_kb": {"$not": {}}}, "size_kb", "$not"),
    (lambda: {"section": {"$exists": 1}}, "section", "$exists"),
    (lambda: {"$or": [{"section": "a"}, {"size_kb": {"$gt": "x"}}]}, "size_kb", "$gt"),
    (lambda: {1: "a"}, "1"),
]


@pytest.mark.parametrize("case", VALUE_ERRORS, ids=[str(i) for i in range(len(VALUE_ERRORS))])
def test_value_errors_name_field_and_operator(case):
    build, *needles = case
    _assert_raises(ValueError, build, *needles)


def test_bare_list_message_suggests_in():
    msg = _assert_raises(ValueError, lambda: {"section": ["a", "b"]}, "section")
    assert "{'section': {'$in': [...]}}" in msg


def test_python_keywords_and_chained_comparisons_raise_type_error():
    a, b = field("size_kb") > 1, field("section") == "a"
    for bad in (lambda: a and b, lambda: a or b, lambda: not a, lambda: bool(a),
                lambda: 1 < field("size_kb") < 5, lambda: 0 <= field("score") <= 1,
                lambda: field("size_kb") in [1, 2]):
        with pytest.raises(TypeError, match=r"& \(and\), \| \(or\) and ~ \(not\)"):
            bad()
    if_statement = "if a: pass"
    with pytest.raises(TypeError):
        exec(if_statement, {"a": a})


def test_misuse_type_errors():
    with pytest.raises(TypeError, match="parenthesize"):
        field("size_kb") == 1 & field("section") == "a"  # noqa: B015 - precedence mistake
    with pytest.raises(TypeError, match="parenthesize"):
        (field("size_kb") > 1) & {"section": "a"}
    with pytest.raises(TypeError, match="parenthesize"):
        True | (field("size_kb") > 1)
    with pytest.raises(TypeError, match="another field|two fields"):
        field("size_kb") > field("score")
    with pytest.raises(TypeError, match="two fields"):
        field("section").isin([field("tags")])
    with pytest.raises(TypeError, match="contains"):
        "a" in field("tags")  # noqa: B015
    with pytest.raises(TypeError, match="not a condition"):
        ~field("free")
    with pytest.raises(TypeError, match="not a filter"):
        compile_filter(field("free"), SCHEMA)
    with pytest.raises(TypeError, match="dict or None"):
        compile_filter("section == 'a'", SCHEMA)
    with pytest.raises(TypeError, match="dict or None"):
        compile_filter([{"section": "a"}], SCHEMA)
    with pytest.raises(TypeError):
        field(3)
    with pytest.raises(ValueError):
        field("")


def test_schema_is_checked():
    with pytest.raises(ValueError, match="'text'.*'body'|'body'.*'text'"):
        compile_filter({"body": "x"}, {"body": "text"})
    with pytest.raises(TypeError):
        compile_filter(None, [("body", "keyword")])


def test_expressions_snapshot_their_operands():
    values = ["a"]
    e = field("section").isin(values)
    values.append("b")
    assert compile_filter(e, SCHEMA) == ("eq", "section", "a")


# ---------------------------------------------------------------------------
# compile_filters: one filter for all queries, or one per query
# ---------------------------------------------------------------------------
def test_compile_filters():
    f1, f2 = field("section") == "a", {"size_kb": {"$gt": 1}}
    assert compile_filters(f1, SCHEMA, 3) == ("eq", "section", "a")
    assert compile_filters(None, SCHEMA, 3) == ("all",)
    assert compile_filters({}, SCHEMA, 0) == ("all",)
    got = compile_filters([f1, f2, None], SCHEMA, 3)
    assert got == [("eq", "section", "a"), ("range", "size_kb", 1, None, False, False), ("all",)]
    assert compile_filters((f1,), SCHEMA, np.int64(1)) == [("eq", "section", "a")]
    assert compile_filters([], SCHEMA, 0) == []
    for bad, nq in (([f1, f2], 3), ([f1], 2), ([], 1), ((f1, f1, f1), 2)):
        with pytest.raises(ValueError, match=f"{len(bad)} filters for {nq} queries"):
            compile_filters(bad, SCHEMA, nq)
    with pytest.raises(ValueError, match=r"filter 1 .*'nope'"):
        compile_filters([f1, {"nope": 1}], SCHEMA, 2)
    with pytest.raises(ValueError, match="nq"):
        compile_filters(f1, SCHEMA, -1)


# ---------------------------------------------------------------------------
# the reference evaluator itself (missing-value semantics of the spec)
# ---------------------------------------------------------------------------
def test_reference_missing_semantics():
    missing = [{}, {"section": None, "tags": None, "size_kb": None, "score": None, "free": None}, {"tags": []}]
    for row in missing:
        for node in (("eq", "section", "a"), ("in", "tags", ["a"]), ("all_of", "tags", ["a"]),
                     ("all_of", "tags", []), ("range", "size_kb", None, None, False, False),
                     ("range", "score", 0.0, None, True, False), ("eq", "free", False), ("exists", "tags")):
            assert not matches(node, row, SCHEMA), (node, row)
            assert matches(("not", node), row, SCHEMA), (node, row)
    row = {"section": "a", "tags": ["a", "b"], "size_kb": 3, "score": 2.5, "free": False}
    for node in (("eq", "tags", "b"), ("in", "tags", ["z", "a"]), ("all_of", "tags", ["b", "a"]),
                 ("all_of", "section", ["a", "a"]), ("range", "size_kb", 2.5, 3, False, True),
                 ("range", "score", None, 2.5, False, True), ("eq", "free", False), ("exists", "free"),
                 ("and", []), ("all",), ("or", [("none",), ("eq", "section", "a")])):
        assert matches(node, row, SCHEMA), node
    for node in (("all_of", "tags", ["a", "c"]), ("all_of", "section", ["a", "b"]), ("or", []), ("none",),
                 ("range", "size_kb", 3, None, False, False), ("eq", "free", True), ("in", "section", [])):
        assert not matches(node, row, SCHEMA), node


# ---------------------------------------------------------------------------
# package export
# ---------------------------------------------------------------------------
def test_field_is_exported_from_the_package():
    init = _REPO / "python" / "vecdex" / "__init__.py"
    if init.exists():  # static check: works without the compiled extension
        tree = pyast.parse(init.read_text())
        imports = [n for n in tree.body if isinstance(n, pyast.ImportFrom) and n.module == "filters"]
        assert any(alias.name == "field" for n in imports for alias in n.names)
        all_node = next(n for n in tree.body if isinstance(n, pyast.Assign)
                        and any(getattr(t, "id", None) == "__all__" for t in n.targets))
        assert "field" in pyast.literal_eval(all_node.value)
    try:
        import vecdex
    except ImportError:
        return  # extension not built in this layout; the static check above stands
    if hasattr(vecdex, "field"):  # an older installed copy may predate filters
        assert "field" in vecdex.__all__
        assert callable(vecdex.field)
