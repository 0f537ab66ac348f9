"""Filtered search (issue 4): ``search(..., filter=F, explain=...)`` on Index (HNSW) and FlatIndex.

The oracle is independent of the code under test: every filter is drawn as a neutral tree, spelled
as a ``vecdex.field`` expression or a Mongo-style dict for the index, and translated by hand (not by
``vecdex.filters.compile_filter``) into the canonical AST that ``filter_reference.matches``
evaluates on the rows we added. Exact distances come from conftest's float64 formulas.

Contract checked throughout:
* FlatIndex (quantization none): the exact k nearest among the matching rows;
* Index: never a non-matching id, exactly min(k, matches) real results, each with its exact
  distance, ascending, no duplicates;
* missing results are id -1 / distance +inf;
* explain=True: one dict per query (plan, matches, selectivity, ef, fallback, distances,
  expansions, filter_checks), ``matches`` equal to the reference count.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdex
from vecdex import field
from vecdex._index import _compile_search_filter

from conftest import METRICS, dist_tolerance, exact_distances
from filter_reference import filter_rows, matches

HNSW_PLANS = {"graph", "filtered_graph", "post_filter", "exact_scan", "empty"}
FLAT_PLANS = {"exact_scan", "flat_scan", "empty"}
PLAN_KEYS = {"plan", "matches", "selectivity", "ef", "fallback", "distances", "expansions", "filter_checks"}
DEFAULT_EF = 64  # documented: ef defaults to max(k, 64)

# --------------------------------------------------------------------------
# attribute data
# --------------------------------------------------------------------------
# fields a scenario may draw (each with its own missing rate) ...
RANDOM_FIELDS = {"kw": "keyword", "tags": "keywords", "n": "int", "x": "float", "flag": "bool", "big": "int"}
# ... plus "u", always present: uniform in 0..999 or the row's rank along the first coordinate
FIELDS = {**RANDOM_FIELDS, "u": "int"}
WORDS = ("red", "green", "blue", "dé", "w4", "w5")
INT_VALUES = (-7, -1, 0, 1, 2, 3, 5, 2**40)
BIG_VALUES = (-(2**63), -(2**53) - 1, 0, 2**53 + 1, 2**63 - 1)
FLOAT_VALUES = (-np.inf, -2.5, -0.0, 0.5, 1.0, 2.0, 3.25, 1e300, np.inf)


def _column(rng, ftype, name, n, missing, vocab):
    """One attribute column (list with None for missing; sometimes a numpy array when complete)."""
    present = rng.random(n) >= missing
    if ftype == "keyword":
        col = [str(rng.choice(vocab)) for _ in range(n)]
    elif ftype == "keywords":
        col = [[str(w) for w in rng.choice(vocab, size=rng.integers(0, 4))] for _ in range(n)]
    elif ftype == "int":
        pool = BIG_VALUES if name == "big" else INT_VALUES
        col = [int(pool[i]) for i in rng.integers(0, len(pool), n)]
    elif ftype == "float":
        col = [float(FLOAT_VALUES[i]) for i in rng.integers(0, len(FLOAT_VALUES), n)]
    else:
        col = [bool(b) for b in rng.integers(0, 2, n)]
    col = [v if p else None for v, p in zip(col, present)]
    if n and all(v is not None for v in col) and ftype in ("int", "float", "bool") and rng.random() < 0.5:
        return col, np.array(col, dtype={"int": np.int64, "float": np.float64, "bool": bool}[ftype])
    return col, col


# --------------------------------------------------------------------------
# filters: a neutral tree -> expression / Mongo dict / canonical reference AST
# --------------------------------------------------------------------------
# leaf: ("leaf", field, op, arg, style); inner: ("and"|"or", [children]) / ("not", child)
_STRING_OPS = ("eq", "ne", "isin", "nin", "contains", "all", "exists")
_NUMBER_OPS = ("eq", "ne", "isin", "nin", "lt", "lte", "gt", "gte", "between", "exists")
_BOOL_OPS = ("eq", "ne", "isin", "nin", "exists")


def _operand_st(name):
    ftype = FIELDS[name]
    if ftype in ("keyword", "keywords"):
        return st.sampled_from(WORDS + ("never-seen",))
    if ftype == "bool":
        return st.booleans()
    if name == "big":
        return st.sampled_from(BIG_VALUES + (2**63, -(2**63) - 1, 2.0**53, 1.5, -(2.0**63)))
    # int and float fields both see int and float operands (compared mathematically)
    return st.sampled_from(INT_VALUES + FLOAT_VALUES + (2.5, -0.5, 4, 2**53 + 1))


@st.composite
def _leaf_st(draw, names):
    name = draw(st.sampled_from(names))
    ftype = FIELDS[name]
    ops = _STRING_OPS if ftype in ("keyword", "keywords") else _BOOL_OPS if ftype == "bool" else _NUMBER_OPS
    op = draw(st.sampled_from(ops))
    val = _operand_st(name)
    if op in ("isin", "nin", "all"):
        arg = tuple(draw(st.lists(val, max_size=3)))
    elif op == "between":
        arg = (draw(st.one_of(st.none(), val)), draw(st.one_of(st.none(), val)))
    elif op == "exists":
        arg = draw(st.booleans())
    else:
        arg = draw(val)
    return ("leaf", name, op, arg, draw(st.integers(0, 3)))


def filter_tree_st(names):
    return st.recursive(
        _leaf_st(names),
        lambda kids: st.one_of(
            st.tuples(st.sampled_from(["and", "or"]), st.lists(kids, min_size=1, max_size=3)),
            st.tuples(st.just("not"), kids),
        ),
        max_leaves=7,
    )


def to_ref(node):
    """The canonical AST meaning `node`, built by hand from the spec (oracle side)."""
    kind = node[0]
    if kind in ("and", "or"):
        return (kind, [to_ref(c) for c in node[1]])
    if kind == "not":
        return ("not", to_ref(node[1]))
    _, name, op, arg, _ = node
    if op in ("eq", "contains"):
        return ("eq", name, arg)
    if op == "ne":
        return ("not", ("eq", name, arg))
    if op == "isin":
        return ("in", name, list(arg))
    if op == "nin":
        return ("not", ("in", name, list(arg)))
    if op == "all":
        return ("all_of", name, list(arg))
    if op == "exists":
        return ("exists", name) if arg else ("not", ("exists", name))
    if op == "between":
        return ("range", name, arg[0], arg[1], True, True)
    lo_side = op in ("gt", "gte")
    incl = op in ("gte", "lte")
    return ("range", name, arg, None, incl, False) if lo_side else ("range", name, None, arg, False, incl)


def to_expr(node):
    kind = node[0]
    if kind == "and":
        return functools.reduce(operator.and_, [to_expr(c) for c in node[1]])
    if kind == "or":
        return functools.reduce(operator.or_, [to_expr(c) for c in node[1]])
    if kind == "not":
        return ~to_expr(node[1])
    _, name, op, arg, style = node
    f = field(name)
    if op == "eq":
        return f == arg
    if op == "ne":
        return f != arg
    if op == "contains":
        return f.contains(arg)
    if op in ("isin", "nin"):
        values = list(arg) if style % 2 else tuple(arg)
        return ~f.isin(values) if op == "nin" else f.isin(values)
    if op == "all":
        return f.contains_all(list(arg))
    if op == "exists":
        return f.exists() if arg else ~f.exists()
    if op == "between":
        return f.between(*arg)
    # the reflected spelling (3 > field) exercises the other operand order
    if style == 3:
        return {"lt": arg > f, "lte": arg >= f, "gt": arg < f, "gte": arg <= f}[op]
    return {"lt": f < arg, "lte": f <= arg, "gt": f > arg, "gte": f >= arg}[op]


def _leaf_ops(node):
    """The operator dict of a leaf, for {'field': {...}} (None when it needs the $exists form)."""
    _, name, op, arg, style = node
    if op in ("eq", "contains"):
        return {"$eq": arg}
    if op == "ne":
        return {"$ne": arg}
    if op == "isin":
        return {"$in": list(arg)}
    if op == "nin":
        return {"$nin": list(arg)}
    if op == "all":
        return {"$all": list(arg)}
    if op == "exists":
        return {"$exists": arg}
    if op == "between":
        out = {}
        if arg[0] is not None:
            out["$gte"] = arg[0]
        if arg[1] is not None:
            out["$lte"] = arg[1]
        return out or {"$exists": True}  # between(None, None): every row with a value
    return {"$" + op: arg}


def to_dict(node):
    kind = node[0]
    if kind == "and":
        parts = [to_dict(c) for c in node[1]]
        merged = {}
        for p in parts:  # several keys in one dict are ANDed: merge when nothing collides
            if any(key in merged for key in p):
                return {"$and": parts}
            merged.update(p)
        return merged
    if kind == "or":
        return {"$or": [to_dict(c) for c in node[1]]}
    if kind == "not":
        child = node[1]
        if child[0] == "leaf" and child[4] % 2:  # the field-level $not
            return {child[1]: {"$not": _leaf_ops(child)}}
        return {"$not": to_dict(child)}
    _, name, op, arg, style = node
    if op in ("eq", "contains") and style == 0:
        return {name: arg}
    return {name: _leaf_ops(node)}


def spell(node, spelling):
    return to_expr(node) if spelling == "expr" else to_dict(node)


# --------------------------------------------------------------------------
# result checks
# --------------------------------------------------------------------------
def check_query(ids, dists, d_row, match_rows, row_of, k, tol, exact, where):
    """One query's result against the exact distances `d_row` (n,) of all rows.

    match_rows: row numbers matching the filter; row_of: external id -> row number."""
    match_rows = np.asarray(match_rows, dtype=np.int64)
    m = min(k, len(match_rows))
    assert ids.shape == (k,) and dists.shape == (k,), where
    assert ids.dtype == np.int64 and dists.dtype == np.float32, where
    assert np.all(ids[m:] == -1) and np.all(np.isposinf(dists[m:])), f"{where}: padding {ids} {dists}"
    got = ids[:m].tolist()
    assert all(i != -1 for i in got), f"{where}: {m} results expected (k={k}, matches={len(match_rows)}), got {ids}"
    assert len(set(got)) == m, f"{where}: duplicate ids {got}"
    unknown = [i for i in got if i not in row_of]
    assert not unknown, f"{where}: ids never added {unknown}"
    if m == 0:
        return
    rows = np.array([row_of[i] for i in got], dtype=np.int64)
    allowed = np.zeros(len(d_row), dtype=bool)
    allowed[match_rows] = True
    bad = [got[j] for j in np.flatnonzero(~allowed[rows])]
    assert not bad, f"{where}: ids not matching the filter returned: {bad}"
    assert np.all(np.diff(dists[:m].astype(np.float64)) >= 0), f"{where}: not ascending {dists}"
    np.testing.assert_allclose(dists[:m], d_row[rows], rtol=0, atol=tol, err_msg=f"{where}: distance of id")
    if exact:
        want = np.sort(d_row[match_rows])[:m]
        np.testing.assert_allclose(dists[:m], want, rtol=0, atol=tol,
                                   err_msg=f"{where}: not the k nearest matching rows")


class _Identity:
    """row_of for indexes whose ids are the row numbers 0..n-1."""

    def __init__(self, n):
        self.n = n

    def __contains__(self, i):
        return 0 <= i < self.n

    def __getitem__(self, i):
        return i


def check_plan(plan, kind, n, n_match, k, ef, where):
    assert isinstance(plan, dict) and set(plan) == PLAN_KEYS, f"{where}: {plan}"
    assert plan["matches"] == n_match, f"{where}: matches {plan['matches']} != reference {n_match}"
    want_sel = n_match / n if n else 0.0
    assert abs(plan["selectivity"] - want_sel) < 1e-12, f"{where}: {plan}"
    assert isinstance(plan["fallback"], bool), where
    for key in ("ef", "distances", "expansions", "filter_checks"):
        assert isinstance(plan[key], int) and plan[key] >= 0, f"{where}: {plan}"
    allowed = HNSW_PLANS if kind == "hnsw" else FLAT_PLANS
    assert plan["plan"] in allowed, f"{where}: {plan}"
    assert (plan["plan"] == "empty") == (n_match == 0 or n == 0), f"{where}: {plan}"
    if plan["plan"] == "empty":
        assert plan["distances"] == 0 and not plan["fallback"], f"{where}: {plan}"
    if plan["plan"] in ("exact_scan", "flat_scan"):
        assert not plan["fallback"] and plan["ef"] == 0 and plan["expansions"] == 0, f"{where}: {plan}"
    if plan["plan"] == "exact_scan":  # only the matching rows are scored
        assert plan["distances"] == n_match, f"{where}: {plan}"
    if plan["plan"] == "flat_scan":
        assert plan["distances"] == n, f"{where}: {plan}"
    if plan["plan"] in ("graph", "filtered_graph", "post_filter"):  # the planner may widen the beam, never narrow it
        assert plan["ef"] >= max(k, ef or DEFAULT_EF), f"{where}: {plan}"
        assert plan["expansions"] >= 1 and plan["distances"] >= 1, f"{where}: {plan}"
        if plan["fallback"]:  # the fall-back scans every matching row
            assert plan["distances"] >= n_match, f"{where}: {plan}"


# --------------------------------------------------------------------------
# 1. property test: random data, attributes and filters
# --------------------------------------------------------------------------
@st.composite
def case_st(draw, walk=False):
    """Parameters of one random scenario; the data itself comes from numpy with the drawn seed.

    Filters are often ORed with a slice "u < t" of the rows, so that selectivities spread over
    (0, 1] instead of piling up near 0. walk=True aims at the graph plans: enough rows, many
    matches, a small k and beam, so that the planner walks the graph."""
    if walk:
        n = draw(st.integers(150, 600))
    else:
        size = draw(st.sampled_from(["zero", "small", "small", "large", "large", "large", "large"]))
        n = {"zero": st.just(0), "small": st.integers(1, 40), "large": st.integers(41, 600)}[size]
        n = draw(n)
    dim = draw(st.sampled_from([1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24]))
    metric = draw(st.sampled_from(METRICS))
    names = draw(st.lists(st.sampled_from(sorted(RANDOM_FIELDS)), min_size=1, max_size=len(RANDOM_FIELDS),
                          unique=True))
    missing = {f: draw(st.sampled_from([0.0, 0.1, 0.3, 0.9])) for f in names}
    vocab = draw(st.integers(1, len(WORDS)))
    if walk:
        k = draw(st.integers(1, 4))
        ef = draw(st.sampled_from([1, 2, 4, 8, None]))
        u_share = draw(st.sampled_from([0.05, 0.2, 0.3, 0.4, 0.7, 0.95]))
        u_sorted = draw(st.booleans())
    else:
        k_kind = draw(st.sampled_from(["small", "small", "small", "beyond_n", "large"]))
        k = n + 3 if k_kind == "beyond_n" else draw(st.integers(1, 12) if k_kind == "small" else st.integers(13, 80))
        ef = draw(st.sampled_from([None, 1, 4, 16, 100]))
        u_share = draw(st.sampled_from([None, None, 0.3, 0.9]))
        u_sorted = draw(st.booleans())
    nq = draw(st.integers(1, 4))
    tree = draw(filter_tree_st(names))
    if u_share is not None:  # widen the filter by a slice of the rows
        u_leaf = ("leaf", "u", "lt", int(u_share * 1000), draw(st.integers(0, 3)))
        how = draw(st.sampled_from(["alone", "first", "last"] if walk else ["first", "last"]))
        tree = u_leaf if how == "alone" else ("or", [u_leaf, tree]) if how == "first" else ("or", [tree, u_leaf])
    spelling = draw(st.sampled_from(["expr", "dict"]))
    data_kind = draw(st.sampled_from(["normal", "grid", "dups"]))
    batches = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    # walk=True also forces each plan, so every walk meets the contract on random data (on these
    # small sets the planner itself prefers scans to two-hop walks)
    plan = draw(st.sampled_from(["auto", "filtered_graph", "filtered_graph", "post_filter", "exact_scan"])) if walk \
        else "auto"
    return n, dim, metric, names, missing, vocab, k, nq, ef, tree, spelling, data_kind, batches, u_sorted, seed, plan


def _vectors(rng, n, nq, dim, metric, data_kind):
    if data_kind == "grid":  # small integers: many exact distance ties
        base = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
        queries = rng.integers(-2, 3, size=(nq, dim)).astype(np.float32)
    else:
        base = rng.normal(size=(n, dim)).astype(np.float32)
        queries = rng.normal(size=(nq, dim)).astype(np.float32)
        if data_kind == "dups" and n:  # duplicated rows and queries equal to stored rows
            base[rng.integers(0, n, n // 2)] = base[rng.integers(0, n, 1)]
            queries[0] = base[rng.integers(0, n)]
    if metric == "cosine":  # zero vectors have no direction
        base[np.all(base == 0, axis=1), 0] = 1
        queries[np.all(queries == 0, axis=1), 0] = 1
    return base, queries


def run_case(case):
    """Build a FlatIndex and an Index on the scenario and check every query against the oracle.
    Returns the plans seen (for the coverage assertions of the walk test)."""
    n, dim, metric, names, missing, vocab, k, nq, ef, tree, spelling, data_kind, batches, u_sorted, seed, plan = case
    rng = np.random.default_rng(seed)
    fields = names + ["u"]
    schema = {f: FIELDS[f] for f in fields}
    base, queries = _vectors(rng, n, nq, dim, metric, data_kind)
    # u: uniform, or the row's rank along the first coordinate (so "u < t" is a slab of space that
    # many queries lie far from: the matches a walk needs are away from where it starts)
    u_all = rng.integers(0, 1000, n)
    if u_sorted and n:
        u_all = np.empty(n, np.int64)
        u_all[np.argsort(base[:, 0], kind="stable")] = np.arange(n) * 1000 // n
    ext = (rng.choice(2**40, size=n, replace=False).astype(np.int64) * 3 + 1) if n else np.zeros(0, np.int64)
    rows = [dict() for _ in range(n)]
    flat = vecdex.FlatIndex(dim, metric=metric, schema=schema)
    hnsw = vecdex.Index(dim, metric=metric, M=6, ef_construction=24, seed=seed % 1000, schema=schema)
    # several batches; a field left out of a batch is missing for its rows
    cuts = np.sort(rng.integers(0, n + 1, size=batches - 1)) if n else np.zeros(batches - 1, np.int64)
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, n]):
        lo, hi = int(lo), int(hi)
        attrs = {}
        for f in fields:
            if f == "u":
                ref_col = [int(v) for v in u_all[lo:hi]]
                sent = np.array(ref_col, dtype=np.int64)
            elif batches > 1 and rng.random() < 0.2:
                continue
            else:
                ref_col, sent = _column(rng, schema[f], f, hi - lo, missing[f], WORDS[:vocab])
            attrs[f] = sent
            for r, v in zip(range(lo, hi), ref_col):
                rows[r][f] = v
        for index in (flat, hnsw):
            index.add(base[lo:hi], ids=ext[lo:hi], attributes=attrs)
    assert len(flat) == len(hnsw) == n

    ast = to_ref(tree)
    match_rows = filter_rows(ast, rows, schema)
    filt = spell(tree, spelling)
    row_of = {int(e): i for i, e in enumerate(ext)}
    d = exact_distances(base, queries, metric) if n else np.zeros((nq, 0))
    tol = np.maximum(1e-4, dist_tolerance(base, queries, metric)) if n else np.full(nq, 1e-4)

    seen = []
    for kind, index in (("flat", flat), ("hnsw", hnsw)):
        kw = {"ef": ef, "plan": plan} if kind == "hnsw" else {}
        ids, dists, plans = index.search(queries, k, filter=filt, explain=True, **kw)
        assert ids.shape == (nq, k) and len(plans) == nq
        for qi in range(nq):
            where = f"{kind} q{qi} filter={filt!r} matches={len(match_rows)}"
            check_query(ids[qi], dists[qi], d[qi], match_rows, row_of, k, tol[qi], kind == "flat", where)
            check_plan(plans[qi], kind, n, len(match_rows), k, ef, where)
            if plans[qi]["fallback"]:  # finished by an exact scan: the exact answer
                check_query(ids[qi], dists[qi], d[qi], match_rows, row_of, k, tol[qi], True, where + " fallback")
            seen.append((kind, plans[qi]["plan"], plans[qi]["fallback"]))
        # explain does not change the answer
        ids2, dists2 = index.search(queries, k, filter=filt, **kw)
        np.testing.assert_array_equal(ids2, ids)
        np.testing.assert_array_equal(dists2, dists)
    return seen


@settings(max_examples=max(250, settings.default.max_examples))
@given(case_st())
def test_filtered_search_property(case):
    run_case(case)


_WALK_PLANS_SEEN = set()


@settings(max_examples=max(100, settings.default.max_examples // 2))
@given(case_st(walk=True))
def test_filtered_walk_property(case):
    for kind, plan, fallback in run_case(case):
        _WALK_PLANS_SEEN.add((kind, plan))
        if fallback:
            _WALK_PLANS_SEEN.add((kind, "fallback"))


def test_walk_property_reached_the_graph_plans():
    """The walk scenarios above must really exercise the walks (else they test nothing new).
    Runs after test_filtered_walk_property (pytest keeps file order)."""
    if not _WALK_PLANS_SEEN:
        pytest.skip("run together with test_filtered_walk_property")
    for want in (("hnsw", "filtered_graph"), ("hnsw", "graph"), ("hnsw", "exact_scan"), ("flat", "flat_scan")):
        assert want in _WALK_PLANS_SEEN, sorted(_WALK_PLANS_SEEN)


def test_oracle_translation_agrees_on_examples():
    """The hand translation used as oracle: spot checks of the spec's semantics (so a wrong oracle
    cannot silently agree with a wrong index)."""
    schema = {"kw": "keyword", "tags": "keywords", "n": "int", "x": "float"}
    row = {"kw": "red", "tags": ["a", "b"], "n": 3, "x": None}
    leaf = lambda f, op, arg: ("leaf", f, op, arg, 0)  # noqa: E731
    assert matches(to_ref(leaf("n", "gt", 2.5)), row, schema)
    assert not matches(to_ref(leaf("n", "lt", 3)), row, schema)
    assert matches(to_ref(leaf("x", "ne", 1.0)), row, schema)  # missing matches !=
    assert not matches(to_ref(leaf("x", "between", (None, None))), row, schema)
    assert matches(to_ref(leaf("tags", "all", ("b", "a"))), row, schema)
    assert matches(to_ref(leaf("tags", "all", ())), row, schema)  # contains_all([]) == exists
    assert not matches(to_ref(leaf("kw", "all", ("red", "blue"))), row, schema)
    assert matches(to_ref(("not", leaf("x", "exists", True))), row, schema)
    tree = ("and", [leaf("n", "gte", 1), leaf("n", "lt", 4), ("not", ("leaf", "kw", "eq", "blue", 1))])
    assert to_dict(tree) == {"$and": [{"n": {"$gte": 1}}, {"n": {"$lt": 4}}, {"kw": {"$not": {"$eq": "blue"}}}]}
    assert matches(to_ref(tree), row, schema)


# --------------------------------------------------------------------------
# deterministic corner cases of the same contract
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("metric", METRICS)
def test_empty_index_and_no_match(kind, metric):
    schema = {"kw": "keyword", "n": "int"}
    make = (lambda: vecdex.FlatIndex(5, metric=metric, schema=schema)) if kind == "flat" else \
        (lambda: vecdex.Index(5, metric=metric, M=4, ef_construction=16, schema=schema))
    q = np.ones((2, 5), np.float32)
    empty = make()
    ids, dists, plans = empty.search(q, 4, filter=field("kw") == "red", explain=True)
    assert np.all(ids == -1) and np.all(np.isposinf(dists))
    assert [p["plan"] for p in plans] == ["empty", "empty"] and [p["matches"] for p in plans] == [0, 0]

    idx = make()
    rng = np.random.default_rng(3)
    idx.add(rng.normal(size=(30, 5)).astype(np.float32) + 0.1, ids=np.arange(100, 130),
            attributes={"kw": ["red"] * 10 + [None] * 20, "n": list(range(30))})
    for filt in ({"kw": "blue"}, field("n") > 1000, {"$and": [{"n": {"$lt": 5}}, {"n": {"$gt": 5}}]},
                 field("kw").isin([])):
        ids, dists, plans = idx.search(q, 7, filter=filt, explain=True)
        assert np.all(ids == -1) and np.all(np.isposinf(dists)), filt
        assert all(p["plan"] == "empty" and p["matches"] == 0 for p in plans), (filt, plans)
    # k far beyond the matches: every match once, then padding
    ids, dists = idx.search(q, 25, filter=field("kw") == "red")
    for row in ids:
        assert sorted(row[:10].tolist()) == list(range(100, 110))
        assert np.all(row[10:] == -1)
    ids, _ = idx.search(q[0], 50, filter=field("n") < 30)  # every row, k > n
    assert sorted(ids[:30].tolist()) == list(range(100, 130)) and np.all(ids[30:] == -1)


# --------------------------------------------------------------------------
# 2. recall on clustered data at several selectivities, (un)correlated
# --------------------------------------------------------------------------
N_REC, DIM_REC, NQ_REC, K = 20000, 32, 150, 10
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5, 1.0)


@pytest.fixture(scope="module")
def recall_data():
    rng = np.random.default_rng(2024)
    n_clusters = 40
    centres = rng.normal(size=(n_clusters, DIM_REC))
    lab = rng.integers(0, n_clusters, N_REC)
    base = (centres[lab] + 0.35 * rng.normal(size=(N_REC, DIM_REC))).astype(np.float32)
    qlab = rng.integers(0, n_clusters, NQ_REC)
    queries = (centres[qlab] + 0.35 * rng.normal(size=(NQ_REC, DIM_REC))).astype(np.float32)
    # "region": the rank of each row along the data's main axis, so a window of ranks is a slab
    # of space; a query's own slab is positively correlated with it, the far end negatively
    mean = base.mean(0, dtype=np.float64)
    axis = np.linalg.svd(base[:4000] - mean, full_matrices=False)[2][0]
    proj = (base - mean) @ axis
    region = np.empty(N_REC, np.int64)
    region[np.argsort(proj, kind="stable")] = np.arange(N_REC)
    q_region = np.searchsorted(np.sort(proj), (queries - mean) @ axis)
    attrs = {
        "rank": rng.permutation(N_REC),           # uncorrelated with the vectors
        "region": region,
        "cluster": [f"c{c}" for c in lab],
    }
    hnsw = vecdex.Index(DIM_REC, M=16, ef_construction=100, seed=1)
    hnsw.add(base, attributes=attrs)
    flat = vecdex.FlatIndex(DIM_REC)
    flat.add(base, attributes=attrs)
    far_cluster = [int(np.argmax(((centres - centres[c]) ** 2).sum(1))) for c in qlab]
    return dict(base=base, queries=queries, attrs=attrs, lab=lab, qlab=qlab, q_region=q_region,
                far_cluster=far_cluster, hnsw=hnsw, flat=flat)


def _bucket_filters(data, corr, s):
    """(per-query filters, (nq, n) bool mask of matching rows) for one bucket."""
    m = max(1, int(round(s * N_REC)))
    nq = len(data["queries"])
    if corr == "uncorrelated":
        mask = np.asarray(data["attrs"]["rank"]) < m
        return [field("rank") < m] * nq, np.broadcast_to(mask, (nq, N_REC))
    region = data["attrs"]["region"]
    filters, masks = [], []
    for j in range(nq):
        r = int(data["q_region"][j])
        if corr == "positive":  # the slab of m ranks around the query
            lo = min(max(0, r - m // 2), N_REC - m)
        else:  # the slab of m ranks at the end farther from the query
            lo = 0 if r >= N_REC // 2 else N_REC - m
        filters.append({"region": {"$gte": lo, "$lt": lo + m}} if j % 2 else field("region").between(lo, lo + m - 1))
        masks.append((region >= lo) & (region < lo + m))
    return filters, np.array(masks)


def _filtered_recall(data, filters, mask, ef=None):
    """(recall@K of the HNSW answer against FlatIndex's exact one, plans), checking the results."""
    q = data["queries"]
    ids, dists, plans = data["hnsw"].search(q, K, ef=ef, filter=filters, explain=True)
    fids, fd = data["flat"].search(q, K, filter=filters)
    d = exact_distances(data["base"], q, "l2")
    hits = total = 0
    for j in range(len(q)):
        allowed = np.flatnonzero(mask[j])
        assert plans[j]["matches"] == len(allowed)
        # a walk finished by the fall-back scan is exact
        check_query(ids[j], dists[j], d[j], allowed, _Identity(N_REC), K, 1e-3, plans[j]["fallback"], f"q{j}")
        check_query(fids[j], fd[j], d[j], allowed, _Identity(N_REC), K, 1e-3, True, f"flat q{j}")
        want = min(K, len(allowed))
        kth = fd[j, want - 1]
        hits += int(np.sum(dists[j, :want] <= kth + 1e-5 * max(1.0, abs(kth))))
        total += want
    return hits / total, plans


@pytest.mark.parametrize("corr", ["uncorrelated", "positive", "negative"])
def test_recall_by_selectivity(recall_data, corr):
    seen = {}
    for s in SELECTIVITIES:
        filters, mask = _bucket_filters(recall_data, corr, s)
        r, plans = _filtered_recall(recall_data, filters, mask)
        plans = [p["plan"] for p in plans]
        seen[s] = set(plans)
        assert r >= 0.95, f"{corr}, selectivity {s}: recall@{K} {r:.4f} (plans {sorted(set(plans))})"
    assert seen[0.001] == {"exact_scan"}, seen
    assert seen[0.5] & {"graph", "filtered_graph", "post_filter"}, seen
    assert seen[1.0] & {"graph", "filtered_graph", "post_filter"}, seen


@pytest.mark.parametrize("which", ["own", "far"])
def test_recall_cluster_label(recall_data, which):
    """Keyword label = the cluster a row was drawn from: the query's own cluster, or the farthest."""
    clusters = recall_data["qlab"] if which == "own" else recall_data["far_cluster"]
    filters = [{"cluster": f"c{c}"} for c in clusters]
    mask = np.array([recall_data["lab"] == c for c in clusters])
    r, _ = _filtered_recall(recall_data, filters, mask)
    assert r >= 0.95, f"{which} cluster: recall@{K} {r:.4f}"


@pytest.mark.parametrize("s", [0.15, 0.2, 0.25, 0.3, 0.4])
def test_recall_negative_correlation_mid_selectivity(recall_data, s):
    """Same buckets as test_recall_by_selectivity, between 10% and 50%, matches far from the query."""
    filters, mask = _bucket_filters(recall_data, "negative", s)
    r, plans = _filtered_recall(recall_data, filters, mask)
    assert r >= 0.95, f"negative, selectivity {s}: recall@{K} {r:.4f} (plans {sorted(set(p['plan'] for p in plans))})"


def test_small_ef_forces_a_correct_walk(recall_data):
    """A small beam makes the planner walk at 10%: the results stay valid (only matching rows,
    exactly min(k, matches), exact distances; checked in _filtered_recall) and a walk that strands
    falls back to a scan rather than returning fewer. Recall below the default ef is not part of
    the contract, so it is not asserted here."""
    for corr in ("uncorrelated", "negative", "positive"):
        filters, mask = _bucket_filters(recall_data, corr, 0.1)
        _, plans = _filtered_recall(recall_data, filters, mask, ef=K)
        assert "filtered_graph" in {p["plan"] for p in plans}, plans


# --------------------------------------------------------------------------
# 3. one filter per query
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_per_query_filter_list(recall_data, kind):
    index = recall_data[kind]
    q = recall_data["queries"][:12]
    filters = [
        field("rank") < 20,
        {"cluster": "c3"},
        None,                                   # this query unfiltered
        {"cluster": "no-such-cluster"},         # matches nothing
        field("rank") < 10000,
        {"$or": [{"cluster": "c1"}, {"rank": {"$lt": 50}}]},
        ~field("cluster").isin([f"c{i}" for i in range(39)]),
        field("region").between(100, 90),       # empty range: nothing
        {"rank": {"$gte": 0}},                  # every row
        field("rank") < 20,                     # repeated filter
        {"$not": {"cluster": "c3"}},
        field("region") >= 19990,
    ]
    kw = {"ef": 40} if kind == "hnsw" else {}
    ids, dists, plans = index.search(q, K, filter=filters, explain=True, **kw)
    for j, f in enumerate(filters):
        one_ids, one_d, one_plan = index.search(q[j:j + 1], K, filter=f, explain=True, **kw)
        np.testing.assert_array_equal(ids[j], one_ids[0], err_msg=f"query {j}")
        np.testing.assert_array_equal(dists[j], one_d[0], err_msg=f"query {j}")
        assert plans[j] == one_plan[0], j
        v_ids, v_d, v_plan = index.search(q[j], K, filter=[f], explain=True, **kw)  # 1-D query, list of one
        np.testing.assert_array_equal(v_ids, ids[j])
        np.testing.assert_array_equal(v_d, dists[j])
        assert v_plan == plans[j]
        if f is not None:
            np.testing.assert_array_equal(index.search(q[j], K, filter=f, **kw)[0], ids[j])
    assert np.all(ids[3] == -1) and np.all(ids[7] == -1)
    assert plans[3]["plan"] == plans[7]["plan"] == "empty"
    assert [p["matches"] for p in plans[:3]] == [20, int(np.sum(recall_data["lab"] == 3)), N_REC]
    # the unfiltered query is the plain search
    np.testing.assert_array_equal(ids[2], index.search(q[2], K, **kw)[0])

    for bad in (filters[:11], filters + [None], [], [{"cluster": "c1"}]):
        with pytest.raises(ValueError, match=f"{len(bad)} filters for 12 queries"):
            index.search(q, K, filter=bad, **kw)
    with pytest.raises(ValueError, match="2 filters for 1 queries"):
        index.search(q[0], K, filter=[None, None], **kw)
    with pytest.raises(ValueError, match="filter 1 \\(of 2\\).*unknown field 'nope'"):
        index.search(q[:2], K, filter=[None, {"nope": 1}], **kw)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_zero_queries_with_empty_filter_list(kind):
    index = vecdex.FlatIndex(3) if kind == "flat" else vecdex.Index(3)
    index.add(np.eye(3, dtype=np.float32), attributes={"a": ["x", "y", "x"]})
    ids, dists, plans = index.search(np.zeros((0, 3), np.float32), 2, filter=[], explain=True)
    assert ids.shape == dists.shape == (0, 2) and plans == []


def test_zero_queries_with_one_filter():
    index = vecdex.Index(3)
    index.add(np.eye(3, dtype=np.float32), attributes={"a": ["x", "y", "x"]})
    ids, dists, plans = index.search(np.zeros((0, 3), np.float32), 2, filter={"a": "x"}, explain=True)
    assert ids.shape == dists.shape == (0, 2) and plans == []


# --------------------------------------------------------------------------
# 4. quantised indexes with filters and rerank
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quant_data():
    rng = np.random.default_rng(77)
    n, dim, nq = 6000, 32, 100
    centres = rng.normal(size=(30, dim))
    lab = rng.integers(0, 30, n)
    base = (centres[lab] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32)
    queries = (centres[rng.integers(0, 30, nq)] + 0.4 * rng.normal(size=(nq, dim))).astype(np.float32)
    attrs = {"rank": rng.permutation(n), "cluster": [f"c{c}" for c in lab]}
    flat = vecdex.FlatIndex(dim)
    flat.add(base, attributes=attrs)
    return base, queries, attrs, lab, flat


@pytest.mark.parametrize("quant", ["sq8", "rabitq4"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_quantised_filtered(quant_data, quant, kind):
    base, queries, attrs, lab, exact_flat = quant_data
    n, dim = base.shape
    if kind == "hnsw":
        index = vecdex.Index(dim, M=16, ef_construction=100, seed=0, quantization=quant)
    else:
        index = vecdex.FlatIndex(dim, quantization=quant)
    index.add(base, attributes=attrs)
    d = exact_distances(base, queries, "l2")
    rank = np.asarray(attrs["rank"])
    cases = [(field("rank") < 6, rank < 6), (field("rank") < 600, rank < 600), ({"rank": {"$lt": 3000}}, rank < 3000),
             (field("rank") < n, np.ones(n, bool)), ({"cluster": "c5"}, lab == 5),
             (~field("cluster").isin(["c5", "c6"]), (lab != 5) & (lab != 6))]
    for filt, mask in cases:
        allowed = np.flatnonzero(mask)
        want_ids, want_d = exact_flat.search(queries, K, filter=filt)
        for rerank in (None, 4):
            kw = {"rerank": rerank}
            if kind == "hnsw":
                kw["ef"] = 80
            ids, dists = index.search(queries, K, filter=filt, **kw)
            hits = total = 0
            for j in range(len(queries)):
                # re-ranked with the full vectors: the distances returned are exact
                check_query(ids[j], dists[j], d[j], allowed, _Identity(n), K, 1e-3, False,
                            f"{quant} {kind} {filt!r} rerank={rerank} q{j}")
                m = min(K, len(allowed))
                hits += int(np.sum(dists[j, :m] <= want_d[j, m - 1] + 1e-5 * max(1.0, want_d[j, m - 1])))
                total += m
            r = hits / total
            # without re-ranking beyond k the codes' own error limits recall (unfiltered rabitq4
            # is about 0.8 here), so the bar applies to the re-ranked search
            if rerank:
                assert r >= 0.95, f"{quant} {kind} filter={filt!r} rerank={rerank}: recall {r:.4f}"


# --------------------------------------------------------------------------
# 5. update_attributes, save / load / mmap
# --------------------------------------------------------------------------
def _small_indexes(seed=5, n=3000, dim=16, quantization=None):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    queries = rng.normal(size=(20, dim)).astype(np.float32)
    ext = np.arange(n, dtype=np.int64) * 7 + 3
    attrs = {"kw": [["red", "green", "blue"][i % 3] for i in range(n)],
             "n": rng.integers(0, 100, n), "tags": [["a"] if i % 5 == 0 else [] for i in range(n)]}
    hnsw = vecdex.Index(dim, M=12, ef_construction=60, seed=0, quantization=quantization)
    flat = vecdex.FlatIndex(dim, quantization=quantization)
    for index in (hnsw, flat):
        index.add(base, ids=ext, attributes=attrs)
    return base, queries, ext, attrs, hnsw, flat


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_update_attributes_changes_filtered_results(kind):
    base, queries, ext, attrs, hnsw, flat = _small_indexes()
    index = hnsw if kind == "hnsw" else flat
    n = len(base)
    d = exact_distances(base, queries, "l2")
    row_of = {int(e): i for i, e in enumerate(ext)}
    # "hot" did not exist; give it to each query's 3 exact nearest rows plus 300 random ones
    nearest = np.unique(np.argsort(d, axis=1)[:, :3])
    rng = np.random.default_rng(0)
    hot = np.unique(np.r_[nearest, rng.choice(n, 300, replace=False)])
    filt = field("kw") == "hot"
    ids, _ = index.search(queries, K, filter=filt)
    assert np.all(ids == -1)
    index.update_attributes(ext[hot], {"kw": ["hot"] * len(hot)})
    ids, dists = index.search(queries, K, filter=filt)
    for j in range(len(queries)):
        check_query(ids[j], dists[j], d[j], hot, row_of, K, 1e-3, kind == "flat", f"q{j}")
        # the 3 nearest rows overall now match, so they lead the filtered answer
        assert set(ids[j, :3].tolist()) == set(ext[np.argsort(d[j])[:3]].tolist())
    # take the label away from the nearest ones again: they must disappear from the answer
    index.update_attributes(ext[nearest], {"kw": [None] * len(nearest)})
    still = np.setdiff1d(hot, nearest)
    ids, dists = index.search(queries, K, filter=filt)
    for j in range(len(queries)):
        check_query(ids[j], dists[j], d[j], still, row_of, K, 1e-3, kind == "flat", f"after removal q{j}")
    # missing matches !=: the rows set to None are back in ~(kw == "hot")
    ids, _ = index.search(queries, 3, filter=~filt)
    for j in range(len(queries)):
        assert set(ids[j].tolist()) == set(ext[np.argsort(d[j])[:3]].tolist())


@pytest.mark.parametrize("quantization", [None, "sq8"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_keeps_filtered_results(tmp_path, kind, quantization):
    base, queries, ext, attrs, hnsw, flat = _small_indexes(seed=9, quantization=quantization)
    index = hnsw if kind == "hnsw" else flat
    index.update_attributes(ext[:50], {"kw": ["rare"] * 50, "n": [None] * 50})
    filters = [field("kw") == "rare", {"n": {"$gte": 10, "$lt": 60}}, ~field("tags").contains("a"),
               {"$or": [{"kw": "blue"}, {"n": 99}]}, field("n") > 1000]
    per_query = [filters[j % len(filters)] for j in range(len(queries))]
    kw = {"ef": 32} if kind == "hnsw" else {}
    before = [index.search(queries, K, filter=f, explain=True, **kw) for f in filters + [per_query]]
    path = tmp_path / "f.vdx"
    index.save(path)
    for mmap in (False, True):
        back = vecdex.load(path, mmap=mmap)
        assert type(back) is type(index)
        for f, (ids, dists, plans) in zip(filters + [per_query], before):
            got_ids, got_d, got_plans = back.search(queries, K, filter=f, explain=True, **kw)
            np.testing.assert_array_equal(got_ids, ids, err_msg=f"mmap={mmap} {f!r}")
            np.testing.assert_array_equal(got_d, dists, err_msg=f"mmap={mmap} {f!r}")
            assert got_plans == plans
    # the filters really selected something different each time (the comparison is not vacuous)
    assert len({b[0].tobytes() for b in before}) == len(before)
    assert np.all(before[len(filters) - 1][0] == -1)  # field("n") > 1000 matches nothing


# --------------------------------------------------------------------------
# 6. bad input
# --------------------------------------------------------------------------
BAD_FILTERS = [
    ({"nope": 1}, ValueError, "unknown field 'nope'"),
    (field("nope") == 1, ValueError, "unknown field 'nope'"),
    ({"kw": 3}, ValueError, "'kw'"),
    (field("n") == "three", ValueError, "'n'"),
    (field("n") > True, ValueError, "'n'"),
    ({"kw": {"$gt": "a"}}, ValueError, "'kw'"),
    (field("tags").contains_all([1]), ValueError, "'tags'"),
    ({"n": float("nan")}, ValueError, "NaN"),
    ({"kw": {"$foo": 1}}, ValueError, "unknown operator '\\$foo'"),
    ({"$or": []}, ValueError, "\\$or"),
    ({"$nor": [{"kw": "red"}]}, ValueError, "\\$nor"),
    ({"kw": ["red", "blue"]}, ValueError, "ambiguous"),
    ({"kw": {}}, ValueError, "empty operator dict"),
    ({"n": {"$in": 5}}, ValueError, "list"),
    ({"kw": None}, ValueError, "None"),
    ("kw == 'red'", TypeError, "filter"),
    (field("kw"), TypeError, "not a filter"),
    (42, TypeError, "filter"),
]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_bad_filters_raise_and_index_stays_usable(kind):
    base, queries, ext, attrs, hnsw, flat = _small_indexes(seed=11, n=800)
    index = hnsw if kind == "hnsw" else flat
    good = field("kw") == "green"
    want = index.search(queries, K, filter=good)
    for filt, exc, msg in BAD_FILTERS:
        with pytest.raises(exc, match=msg):
            index.search(queries, K, filter=filt)
        with pytest.raises(exc, match=msg):  # inside a per-query list too
            index.search(queries[:2], K, filter=[good, filt])
    for explain in (1, "yes", None, np.bool_(True)):
        with pytest.raises(TypeError, match="explain"):
            index.search(queries, K, filter=good, explain=explain)
    got = index.search(queries, K, filter=good)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert len(index) == 800 and index.schema == {"kw": "keyword", "n": "int", "tags": "keywords"}


def test_native_rejects_bad_trees_without_crashing():
    """The core re-checks what the Python layer compiled: a hand-made bad tree is a ValueError."""
    _, queries, _, _, hnsw, flat = _small_indexes(seed=12, n=300)
    for index in (hnsw, flat):
        for bad in (("eq", "kw", 3), ("eq", "nope", "x"), ("range", "kw", 1, 2, True, True), ("frob",)):
            with pytest.raises(ValueError):
                index._native.search(queries, 5, 0, 1, 0, filters=[bad], filter_of_query=None, explain=False)
        with pytest.raises(ValueError):  # an index past the list of filters
            index._native.search(queries[:2], 5, 0, 1, 0, filters=[("all",)],
                                 filter_of_query=np.array([0, 1], np.uint32), explain=False)
        ids, _ = index.search(queries, 5, filter={"kw": "red"})
        assert np.all(ids >= 0)


# --------------------------------------------------------------------------
# 7. threads
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_threads_give_the_same_filtered_results(recall_data, kind):
    index = recall_data[kind]
    q = recall_data["queries"]
    nq = len(q)
    mixed = [[field("rank") < 20, {"cluster": f"c{j % 40}"}, field("rank") < 6000, None,
              {"region": {"$gte": 10000}}, {"cluster": "none"}][j % 6] for j in range(nq)]
    kws = [{"ef": 16}, {"ef": 64}] if kind == "hnsw" else [{}]
    for filt in (field("rank") < 3000, {"rank": {"$lt": 15000}}, mixed):
        for kw in kws:
            one = index.search(q, K, filter=filt, num_threads=1, explain=True, **kw)
            two = index.search(q, K, filter=filt, num_threads=2, explain=True, **kw)
            np.testing.assert_array_equal(one[0], two[0])
            np.testing.assert_array_equal(one[1], two[1])
            assert one[2] == two[2]


# --------------------------------------------------------------------------
# forced plans
# --------------------------------------------------------------------------
def test_forced_exact_scan_without_filter_is_exact():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(800, 12)).astype(np.float32)
    queries = rng.normal(size=(9, 12)).astype(np.float32)
    hnsw = vecdex.Index(12, metric="l2", M=4, ef_construction=8)
    hnsw.add(base)
    flat = vecdex.FlatIndex(12, metric="l2")
    flat.add(base)
    ids, dists, plans = hnsw.search(queries, 7, ef=7, plan="exact_scan", explain=True)
    want_ids, want_dists = flat.search(queries, 7)
    np.testing.assert_allclose(dists, want_dists, rtol=1e-5, atol=1e-5)
    assert (ids == want_ids).mean() > 0.99  # equal up to distance ties
    assert {p["plan"] for p in plans} == {"exact_scan"} and all(p["distances"] == 800 for p in plans)


@pytest.mark.parametrize("bad", ["fast", "", "EXACT_SCAN", 3, None])
def test_unknown_plan_is_rejected(bad):
    index = vecdex.Index(3)
    index.add(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="plan"):
        index.search(np.eye(3, dtype=np.float32), 1, plan=bad)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_many_distinct_filters_run_in_stretches(kind):
    """With a budget of one bitset, a batch of per-query filters runs one stretch per distinct
    filter; the answers and plans equal the batch run in one stretch."""
    rng = np.random.default_rng(9)
    n, nq = 3000, 40
    base = rng.normal(size=(n, 8)).astype(np.float32)
    queries = rng.normal(size=(nq, 8)).astype(np.float32)
    index = vecdex.FlatIndex(8) if kind == "flat" else vecdex.Index(8, M=8, ef_construction=32)
    index.add(base, attributes={"g": rng.integers(0, 10, n)})
    filters = [{"g": int(g)} for g in rng.integers(0, 10, nq)]  # repeats and changes
    distinct, of_query = _compile_search_filter(filters, index.schema, nq)
    one = index._native.search(queries, 5, 0, 1, 0, filters=distinct, filter_of_query=of_query, explain=True)
    many = index._native.search(queries, 5, 0, 1, 0, filters=distinct, filter_of_query=of_query, explain=True,
                                filter_budget=1)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])
    assert one[2] == many[2]
    g = index.get_attributes(np.arange(n))["g"]
    for q in range(nq):
        assert all(g[i] == filters[q]["g"] for i in many[0][q] if i >= 0)
