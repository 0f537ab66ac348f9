"""Attribute columns and native filter evaluation (issue 4).

Filters are given here as the canonical AST (nested tuples) and evaluated through the native
``filter_ids`` / ``filter_count``; a pure-Python reference evaluator over the same values is the
oracle. Search with filters is tested elsewhere.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdex
from vdx_file import rewrite, sections

TYPES = ("keyword", "keywords", "int", "float", "bool")
WORDS = ("a", "b", "c", "dé")
INTS = (-3, -1, 0, 1, 2, 5, 2**40)
FLOATS = (-2.5, -1.0, -0.0, 0.5, 1.0, 2.0, 3.25, math.inf)


# --------------------------------------------------------------------------
# reference evaluator
# --------------------------------------------------------------------------
def _eq(ftype, have, v):
    if have is None:
        return False
    if ftype == "keywords":
        return v in have
    return have == v  # Python compares int and float exactly, like the core


def ref_eval(node, schema, rows):
    """Set of row numbers matching `node`; rows: list of {field: value or None}."""
    op = node[0]
    n = len(rows)
    if op == "all":
        return set(range(n))
    if op == "none":
        return set()
    if op == "and":
        out = set(range(n))
        for c in node[1]:
            out &= ref_eval(c, schema, rows)
        return out
    if op == "or":
        out = set()
        for c in node[1]:
            out |= ref_eval(c, schema, rows)
        return out
    if op == "not":
        return set(range(n)) - ref_eval(node[1], schema, rows)
    f = node[1]
    t = schema[f]
    if op == "eq":
        return {r for r in range(n) if _eq(t, rows[r].get(f), node[2])}
    if op == "in":
        return {r for r in range(n) if any(_eq(t, rows[r].get(f), v) for v in node[2])}
    if op == "all_of":
        return {r for r in range(n) if node[2] and all(_eq(t, rows[r].get(f), v) for v in node[2])}
    if op == "range":
        _, _, lo, hi, lo_in, hi_in = node

        def ok(x):
            if x is None:
                return False
            if lo is not None and not (x >= lo if lo_in else x > lo):
                return False
            if hi is not None and not (x <= hi if hi_in else x < hi):
                return False
            return True

        return {r for r in range(n) if ok(rows[r].get(f))}
    if op == "exists":
        v = [rows[r].get(f) for r in range(n)]
        if t == "keywords":
            return {r for r in range(n) if v[r]}
        return {r for r in range(n) if v[r] is not None}
    raise AssertionError(op)


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------
def value_st(t):
    if t == "keyword":
        return st.sampled_from(WORDS)
    if t == "keywords":
        return st.lists(st.sampled_from(WORDS), max_size=3)
    if t == "int":
        return st.sampled_from(INTS)
    if t == "float":
        return st.sampled_from(FLOATS)
    return st.booleans()


def cell_st(t):
    return st.one_of(st.none(), value_st(t))


def query_value_st(t):
    """A value a filter may compare field type t with (including never-seen ones)."""
    if t in ("keyword", "keywords"):
        return st.sampled_from(WORDS + ("zz",))
    if t in ("int", "float"):
        return st.sampled_from(INTS + FLOATS + (1.5, -0.5, 4))
    return st.booleans()


schema_st = st.dictionaries(
    st.sampled_from(["s", "tags", "n", "x", "flag", "k2"]), st.sampled_from(TYPES), min_size=1, max_size=4
)


def ast_st(schema):
    fields = list(schema)

    def leaf(draw_field):
        return draw_field

    @st.composite
    def leaf_st(draw):
        f = draw(st.sampled_from(fields))
        t = schema[f]
        ops = ["eq", "in", "all_of", "exists"] + (["range"] * 2 if t in ("int", "float") else [])
        op = draw(st.sampled_from(ops))
        qv = query_value_st(t)
        if op == "eq":
            return ("eq", f, draw(qv))
        if op in ("in", "all_of"):
            return (op, f, draw(st.lists(qv, max_size=3)))
        if op == "exists":
            return ("exists", f)
        lo = draw(st.one_of(st.none(), qv))
        hi = draw(st.one_of(st.none(), qv))
        return ("range", f, lo, hi, draw(st.booleans()), draw(st.booleans()))

    base = st.one_of(leaf_st(), st.just(("all",)), st.just(("none",)))
    return st.recursive(
        base,
        lambda kids: st.one_of(
            st.tuples(st.just("and"), st.lists(kids, max_size=3)),
            st.tuples(st.just("or"), st.lists(kids, max_size=3)),
            st.tuples(st.just("not"), kids),
        ),
        max_leaves=6,
    )


@st.composite
def scenario_st(draw):
    schema = draw(schema_st)
    declare = draw(st.booleans())
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 12))
        cols = {}
        for f, t in schema.items():
            if draw(st.integers(0, 4)) == 0:
                continue  # field absent from this batch: missing for its rows
            cols[f] = draw(st.lists(cell_st(t), min_size=n, max_size=n))
        batches.append((n, cols))
    total = sum(n for n, _ in batches)
    updates = []
    if total:
        for _ in range(draw(st.integers(0, 2))):
            rows = draw(st.lists(st.integers(0, total - 1), unique=True, max_size=total))
            f = draw(st.sampled_from(list(schema)))
            updates.append((rows, {f: draw(st.lists(cell_st(schema[f]), min_size=len(rows), max_size=len(rows)))}))
    asts = draw(st.lists(ast_st(schema), min_size=1, max_size=6))
    return schema, declare, batches, updates, asts


def _as_numpy_when_possible(t, col):
    """Numeric and bool columns without None as numpy arrays, to cover the fast path."""
    if any(v is None for v in col) or not col:
        return col
    if t == "int":
        return np.array(col, dtype=np.int64)
    if t == "float":
        return np.array(col, dtype=np.float64)
    if t == "bool":
        return np.array(col, dtype=bool)
    return col


def _ids(idx, ast):
    return sorted(int(i) for i in idx._native.filter_ids(ast))


# --------------------------------------------------------------------------
# property test: native evaluation == reference, after appends and updates
# --------------------------------------------------------------------------
@settings(max_examples=max(60, settings.default.max_examples))
@given(scenario_st(), st.booleans())
def test_filters_match_reference(scenario, use_numpy):
    schema, declare, batches, updates, asts = scenario
    idx = vecdex.FlatIndex(dim=2, schema=schema if declare else None)
    rows = []  # reference: one dict per row
    declared = dict(schema) if declare else {}
    for n, cols in batches:
        sent = {}
        for f, col in cols.items():
            # undeclared all-None columns cannot be typed: the index ignores them
            if f not in declared and all(v is None for v in col):
                continue
            # an int column of floats-looking-ints is still int; a float column of whole
            # numbers must be declared or it would be inferred as int
            if f not in declared and schema[f] == "float":
                col = [None if v is None else float(v) for v in col]
            sent[f] = _as_numpy_when_possible(schema[f], col) if use_numpy else col
            if f not in declared:
                declared[f] = schema[f]
        idx.add(np.zeros((n, 2), np.float32), attributes=sent)
        for i in range(n):
            rows.append({f: cols[f][i] for f in cols})
    assert len(idx) == len(rows)
    for urows, cols in updates:
        f, col = next(iter(cols.items()))
        if f not in declared and all(v is None for v in col):
            continue
        if f not in declared and schema[f] == "float":
            col = [None if v is None else float(v) for v in col]
        if f not in declared:
            declared[f] = schema[f]
        idx.update_attributes(urows, {f: col})
        for r, v in zip(urows, col):
            rows[r][f] = v
    assert idx.schema == {f: declared[f] for f in idx.schema}
    assert set(idx.schema) == set(declared)

    if rows and declared:
        got = idx.get_attributes(list(range(len(rows))))
        for f in declared:
            assert got[f] == [r.get(f) for r in rows], f
    for ast in asts:
        fields_used = _fields(ast)
        if not fields_used <= set(declared):
            with pytest.raises(ValueError, match="unknown field"):
                idx._native.filter_ids(ast)
            continue
        want = sorted(ref_eval(ast, schema, rows))
        assert _ids(idx, ast) == want, ast
        assert idx._native.filter_count(ast) == len(want)


def _fields(ast):
    op = ast[0]
    if op in ("all", "none"):
        return set()
    if op in ("and", "or"):
        out = set()
        for c in ast[1]:
            out |= _fields(c)
        return out
    if op == "not":
        return _fields(ast[1])
    return {ast[1]}


# --------------------------------------------------------------------------
# semantics spelled out
# --------------------------------------------------------------------------
def _example(kind="flat", n=8):
    if kind == "hnsw":
        idx = vecdex.Index(dim=3, M=4, ef_construction=20, schema={"section": "keyword", "score": "float"})
    else:
        idx = vecdex.FlatIndex(dim=3, schema={"section": "keyword", "score": "float"})
    rng = np.random.default_rng(0)
    idx.add(
        rng.standard_normal((n, 3)).astype(np.float32),
        ids=[100 + i for i in range(n)],
        attributes={
            "section": ["python", None, "web", "python", "doc", None, "web", "python"][:n],
            "tags": [["a", "b"], [], None, ["b"], ["c", "a"], ["a"], None, ["b", "b"]][:n],
            "size_kb": [10, 200, None, 3, 2, 7, 500, None][:n],
            "score": [0.5, None, 1.5, 2.0, -1.0, 0.0, 3.0, 1.0][:n],
            "free": [True, False, None, True, False, True, None, False][:n],
        },
    )
    return idx


def test_semantics_examples():
    idx = _example()
    assert idx.schema == {"section": "keyword", "score": "float", "tags": "keywords", "size_kb": "int", "free": "bool"}
    f = lambda ast: list(idx._native.filter_ids(ast))  # noqa: E731
    assert f(("eq", "section", "python")) == [100, 103, 107]
    assert f(("not", ("eq", "section", "python"))) == [101, 102, 104, 105, 106]  # missing rows match !=
    assert f(("eq", "section", "never-seen")) == []
    assert f(("in", "tags", ["c", "zz"])) == [104]
    assert f(("all_of", "tags", ["a", "b"])) == [100]
    assert f(("all_of", "tags", [])) == []
    assert f(("in", "tags", [])) == []
    assert f(("exists", "tags")) == [100, 103, 104, 105, 107]  # [] does not exist
    assert f(("range", "size_kb", 2.5, None, False, True)) == [100, 101, 103, 105, 106]  # > 2.5 == >= 3
    assert f(("range", "size_kb", None, 7, True, False)) == [103, 104]
    assert f(("range", "score", 0, 1.5, True, True)) == [100, 102, 105, 107]
    assert f(("eq", "size_kb", 10.0)) == [100]
    assert f(("eq", "free", False)) == [101, 104, 107]
    assert f(("and", [])) == list(range(100, 108))
    assert f(("or", [])) == []
    assert idx._native.filter_count(("or", [("eq", "free", True), ("exists", "section")])) == 7


def test_get_attributes_fields_and_missing_ids():
    idx = _example()
    got = idx.get_attributes([102, 100], fields=["tags", "size_kb"])
    assert got == {"tags": [None, ["a", "b"]], "size_kb": [None, 10]}
    assert idx.get_attributes(101, fields="section") == {"section": [None]}
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        idx.get_attributes([100], fields=["nope"])
    with pytest.raises(ValueError, match="999"):
        idx.get_attributes([999])


def test_inference_and_types():
    idx = vecdex.FlatIndex(dim=1)
    idx.add(
        np.zeros((3, 1), np.float32),
        attributes={"mixed": [1, 2.5, None], "u": np.array([1, 2, 3], np.uint8), "none": [None] * 3,
                    "words": np.array(["x", "y", "x"])},
    )
    assert idx.schema == {"mixed": "float", "u": "int", "words": "keyword"}
    assert idx.get_attributes([0, 1, 2])["mixed"] == [1.0, 2.5, None]
    # a float field accepts ints; an int field does not accept floats
    idx.add(np.zeros((1, 1), np.float32), attributes={"mixed": [3], "u": [np.int64(7)]})
    assert idx.get_attributes([3], fields=["mixed", "u"]) == {"mixed": [3.0], "u": [7]}


def test_update_attributes():
    idx = _example()
    idx.update_attributes([100, 106], {"section": ["doc", "python"], "tags": [None, ["z"]], "new": [True, None]})
    f = lambda ast: list(idx._native.filter_ids(ast))  # noqa: E731
    assert f(("eq", "section", "python")) == [103, 106, 107]
    assert f(("eq", "section", "doc")) == [100, 104]
    assert f(("in", "tags", ["z", "a"])) == [104, 105, 106]
    assert f(("exists", "new")) == [100]
    assert idx.schema["new"] == "bool"
    idx.update_attributes([103], {"size_kb": [None], "score": [None]})
    assert f(("exists", "size_kb")) == [100, 101, 104, 105, 106]
    assert f(("range", "score", None, None, True, True)) == [100, 102, 104, 105, 106, 107]


# --------------------------------------------------------------------------
# errors leave the index unchanged
# --------------------------------------------------------------------------
def _snapshot(idx):
    return len(idx), idx.schema, idx.get_attributes(idx.ids()) if len(idx) else {}


BAD_ADDS = [
    ({"section": [1, "a"]}, ValueError, "section"),
    ({"size_kb": [1.5, 2]}, ValueError, "size_kb"),
    ({"size_kb": [True, 2]}, ValueError, "size_kb"),
    ({"score": [float("nan"), 1.0]}, ValueError, "score"),
    ({"score": np.array([1.0, np.nan])}, ValueError, "score"),
    ({"free": [1, 0]}, ValueError, "free"),
    ({"tags": ["ab", ["c"]]}, ValueError, "tags"),
    ({"tags": [["a", 3], []]}, ValueError, "tags"),
    ({"section": ["a"]}, ValueError, "section"),  # wrong length
    ({"section": np.array(["a", "b", "c"])}, ValueError, "section"),
    ({"size_kb": np.array([[1, 2]])}, ValueError, "size_kb"),
    ({"size_kb": np.array([1.0, 2.0])}, ValueError, "size_kb"),  # float array for an int field
    ({"size_kb": [2**64, 1]}, ValueError, "size_kb"),
    ({"brand_new": [object(), 1]}, ValueError, "brand_new"),
    ({"brand_new": ["a", 1]}, ValueError, "brand_new"),
    ({"ok_new": ["a", "b"], "section": [3, 4]}, ValueError, "section"),  # new field not declared either
    ({"section": "ab"}, TypeError, "section"),
    ({1: ["a", "b"]}, TypeError, "str"),
    (["section"], TypeError, "dict"),
]


@pytest.mark.parametrize("attrs,exc,name", BAD_ADDS)
def test_bad_add_changes_nothing(attrs, exc, name):
    idx = _example()
    before = _snapshot(idx)
    with pytest.raises(exc, match=name):
        idx.add(np.ones((2, 3), np.float32), ids=[1, 2], attributes=attrs)
    assert _snapshot(idx) == before
    assert "ok_new" not in idx.schema


def test_bad_vectors_or_ids_leave_attributes_alone():
    idx = _example()
    before = _snapshot(idx)
    bad = np.ones((2, 3), np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError):
        idx.add(bad, attributes={"fresh": ["a", "b"]})
    with pytest.raises(ValueError):
        idx.add(np.ones((2, 3), np.float32), ids=[100, 5], attributes={"fresh": ["a", "b"]})
    assert _snapshot(idx) == before


def test_schema_errors():
    with pytest.raises(ValueError, match="unknown type 'text' for field 'a'"):
        vecdex.FlatIndex(dim=2, schema={"a": "text"})
    with pytest.raises(ValueError, match="'b'"):
        vecdex.Index(dim=2, schema={"b": 3})
    with pytest.raises(TypeError):
        vecdex.FlatIndex(dim=2, schema=["a"])
    idx = vecdex.FlatIndex(dim=2, schema={"a": "int", "b": "keyword"})
    assert idx.schema == {"a": "int", "b": "keyword"}
    with pytest.raises(ValueError, match="'a'.*int"):
        idx._native.declare_schema({"c": "bool", "a": "float"})
    assert idx.schema == {"a": "int", "b": "keyword"}  # all or nothing
    idx._native.declare_schema({"a": "int"})  # same type: fine
    with pytest.raises(ValueError, match="'a'"):
        idx.add(np.zeros((1, 2), np.float32), attributes={"a": ["x"]})
    assert len(idx) == 0


def test_bad_update_changes_nothing():
    idx = _example()
    before = _snapshot(idx)
    with pytest.raises(ValueError, match="999"):
        idx.update_attributes([100, 999], {"section": ["a", "b"]})
    with pytest.raises(ValueError, match="size_kb"):
        idx.update_attributes([100, 101], {"section": ["a", "b"], "size_kb": [1, "x"]})
    with pytest.raises(ValueError, match="twice"):
        idx.update_attributes([100, 100], {"section": ["a", "b"]})
    with pytest.raises(ValueError, match="section"):
        idx.update_attributes([100, 101], {"section": ["a"]})
    with pytest.raises(TypeError):
        idx.update_attributes([100], None)
    assert _snapshot(idx) == before


@pytest.mark.parametrize(
    "ast,match",
    [
        (("eq", "nope", 1), "unknown field 'nope'"),
        (("and", [("eq", "section", "a"), ("exists", "nope")]), "unknown field 'nope'"),
        (("eq", "section", 3), "section"),
        (("eq", "size_kb", "3"), "size_kb"),
        (("eq", "size_kb", True), "size_kb"),
        (("eq", "free", 1), "free"),
        (("range", "section", "a", "b", True, True), "section"),
        (("range", "score", float("nan"), None, True, True), "score"),
        (("in", "tags", "ab"), "list"),
        (("eq", "section"), "malformed"),
        (("frob", "section", 1), "unknown operator"),
        (["eq", "section", "a"], "malformed"),
        (("not", ("all",), ("all",)), "malformed"),
        (("range", "score", 1, 2, 1, 0), "bools"),
        (("eq", "section", object()), "section"),
    ],
)
def test_bad_filters(ast, match):
    idx = _example()
    with pytest.raises(ValueError, match=match):
        idx._native.filter_ids(ast)


def test_deep_filter_rejected_not_crashing():
    idx = _example()
    ast = ("all",)
    for _ in range(2000):
        ast = ("not", ast)
    with pytest.raises(ValueError, match="deep"):
        idx._native.filter_count(ast)


# --------------------------------------------------------------------------
# save / load / mmap
# --------------------------------------------------------------------------
PROBES = [
    ("eq", "section", "python"),
    ("in", "tags", ["a", "c"]),
    ("all_of", "tags", ["a", "b"]),
    ("range", "size_kb", 3, 200, True, False),
    ("range", "score", None, 1.0, True, True),
    ("not", ("exists", "free")),
    ("eq", "free", True),
]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_roundtrip(tmp_path, kind, mmap):
    idx = _example(kind)
    idx.update_attributes([101], {"section": ["web"]})
    path = tmp_path / "a.vdx"
    idx.save(path)
    back = vecdex.load(path, mmap=mmap)
    assert back.schema == idx.schema
    assert back.get_attributes(back.ids()) == idx.get_attributes(idx.ids())
    for ast in PROBES:
        np.testing.assert_array_equal(back._native.filter_ids(ast), idx._native.filter_ids(ast))
    assert back.memory_usage()["attributes"] > 0
    if mmap:
        with pytest.raises(ValueError, match="read-only"):
            back.update_attributes([100], {"section": ["x"]})
        with pytest.raises(ValueError, match="read-only"):
            back._native.declare_schema({"other": "int"})
        with pytest.raises(ValueError, match="read-only"):
            back.add(np.zeros((1, 3), np.float32), attributes={"section": ["x"]})
    else:
        # a loaded copy keeps growing and updating like the original
        for target in (idx, back):
            target.add(np.zeros((2, 3), np.float32), ids=[1, 2],
                       attributes={"section": ["python", None], "tags": [["c"], ["a", "b"]]})
            target.update_attributes([100, 2], {"size_kb": [None, 50], "tags": [["q"], None]})
        assert back.get_attributes(back.ids()) == idx.get_attributes(idx.ids())
        for ast in PROBES:
            np.testing.assert_array_equal(back._native.filter_ids(ast), idx._native.filter_ids(ast))
        back.save(path)
        again = vecdex.load(path, mmap=True)
        assert again.get_attributes(again.ids()) == idx.get_attributes(idx.ids())


def test_files_without_attributes_load(tmp_path):
    idx = vecdex.FlatIndex(dim=2)
    idx.add(np.eye(2, dtype=np.float32))
    idx.save(tmp_path / "plain.vdx")
    present = sections((tmp_path / "plain.vdx").read_bytes())
    assert b"ATTS" not in present and b"ATTD" not in present
    back = vecdex.load(tmp_path / "plain.vdx")
    assert back.schema == {}
    back.add(np.eye(2, dtype=np.float32), ids=[5, 6], attributes={"a": ["x", "y"]})
    assert list(back._native.filter_ids(("not", ("exists", "a")))) == [0, 1]
    ro = vecdex.load(tmp_path / "plain.vdx", mmap=True)
    assert ro.schema == {}
    with pytest.raises(ValueError, match="unknown field"):
        ro._native.filter_count(("exists", "a"))


def test_empty_schema_declared_only(tmp_path):
    idx = vecdex.Index(dim=2, schema={"a": "keywords", "b": "float"})
    idx.save(tmp_path / "e.vdx")
    for mmap in (False, True):
        back = vecdex.load(tmp_path / "e.vdx", mmap=mmap)
        assert back.schema == {"a": "keywords", "b": "float"}
        assert back._native.filter_count(("all",)) == 0


# --------------------------------------------------------------------------
# corrupt files: rewrite a section with a valid checksum, so the content checks must catch it
# --------------------------------------------------------------------------
def _directory(blob):
    """{field: (type, aux, [(offset, bytes), ...], position of the field's rows-independent entries)}."""
    off, length, _ = sections(blob)[b"ATTS"]
    d = blob[off:off + length]
    version, nfields, rows = struct.unpack_from("<IIQ", d, 0)
    pos = 16
    fields = {}
    for _ in range(nfields):
        nlen, = struct.unpack_from("<I", d, pos)
        name = d[pos + 4:pos + 4 + nlen].decode()
        pos += 4 + nlen
        ftype = d[pos]
        aux, narr = struct.unpack_from("<QI", d, pos + 4)
        arrays_at = pos + 16
        arrays = [struct.unpack_from("<QQ", d, arrays_at + 16 * k) for k in range(narr)]
        fields[name] = (ftype, aux, arrays, arrays_at)
        pos = arrays_at + 16 * narr
    return d, fields


def _patch_data(blob, field, array_no, fmt, index, value):
    _, fields = _directory(blob)
    aoff, alen = fields[field][2][array_no]
    off, length, _ = sections(blob)[b"ATTD"]
    data = bytearray(blob[off:off + length])
    struct.pack_into(fmt, data, aoff + index * struct.calcsize(fmt), value)
    return rewrite(blob, b"ATTD", data)


def _read_data(blob, field, array_no, fmt):
    _, fields = _directory(blob)
    aoff, alen = fields[field][2][array_no]
    off, _, _ = sections(blob)[b"ATTD"]
    n = alen // struct.calcsize(fmt)
    return list(struct.unpack_from("<%d%s" % (n, fmt[-1]), blob, off + aoff))


@pytest.fixture
def saved(tmp_path):
    idx = _example()
    path = tmp_path / "c.vdx"
    idx.save(path)
    return path, path.read_bytes()


def _corrupt_cases(blob):
    # keyword 'section': present, codes, dict offsets, dict chars, posting offsets, posting rows
    yield "code out of range", _patch_data(blob, "section", 1, "<I", 0, 77)
    yield "code on a missing row", _patch_data(blob, "section", 1, "<I", 1, 0)
    rows = _read_data(blob, "section", 5, "<I")
    yield "unsorted postings", _patch_data(_patch_data(blob, "section", 5, "<I", 0, rows[1]), "section", 5, "<I", 1,
                                           rows[0])
    yield "posting beyond rows", _patch_data(blob, "section", 5, "<I", 0, 1000)
    yield "posting offsets", _patch_data(blob, "section", 4, "<Q", 1, 9999)
    # keywords 'tags': present, row offsets, codes, ...
    yield "keywords row offsets", _patch_data(blob, "tags", 1, "<Q", 1, 10**6)
    yield "keywords code", _patch_data(blob, "tags", 2, "<I", 0, 55)
    # int 'size_kb': present, values, order
    order = _read_data(blob, "size_kb", 2, "<I")
    yield "unsorted order", _patch_data(_patch_data(blob, "size_kb", 2, "<I", 0, order[1]), "size_kb", 2, "<I", 1,
                                        order[0])
    yield "order names a missing row", _patch_data(blob, "size_kb", 2, "<I", 0, 2)
    # float NaN
    yield "nan", _patch_data(blob, "score", 1, "<d", 0, float("nan"))
    # bool: true on a missing row
    yield "bool", _patch_data(blob, "free", 1, "<Q", 0, 0xFF)
    # present bits beyond the last row
    yield "tail bits", _patch_data(blob, "free", 0, "<Q", 0, 0xFFFF)
    # directory: wrong row count, wrong type, array length
    d, fields = _directory(blob)
    d2 = bytearray(d)
    struct.pack_into("<Q", d2, 8, 9)
    yield "rows", rewrite(blob, b"ATTS", d2)
    d2 = bytearray(d)
    d2[d.index(b"section") + 7] = 9
    yield "type", rewrite(blob, b"ATTS", d2)
    d2 = bytearray(d)
    at = fields["size_kb"][3]
    struct.pack_into("<Q", d2, at + 16 + 8, 8)  # values array: 8 bytes instead of 64
    yield "array length", rewrite(blob, b"ATTS", d2)
    d2 = bytearray(d)
    struct.pack_into("<Q", d2, at + 16, 1 << 40)  # values array: far outside
    yield "array offset", rewrite(blob, b"ATTS", d2)
    d2 = bytearray(d)
    struct.pack_into("<I", d2, 4, 0x7FFFFFFF)  # field count far beyond the directory
    yield "field count", rewrite(blob, b"ATTS", d2)


def test_corrupt_attribute_sections_rejected(saved, tmp_path):
    path, blob = saved
    vecdex.load(path)  # the unmodified file loads
    for name, bad in _corrupt_cases(blob):
        p = tmp_path / "bad.vdx"
        p.write_bytes(bad)
        for mmap in (False, True):
            with pytest.raises(ValueError):
                vecdex.load(p, mmap=mmap)
                pytest.fail(f"corruption not detected: {name}")


def test_truncated_and_flipped_files_rejected(saved, tmp_path):
    path, blob = saved
    off, length, _ = sections(blob)[b"ATTD"]
    p = tmp_path / "t.vdx"
    for bad in (blob[: off + length // 2], blob[:-7], blob[:off] + bytes([blob[off] ^ 1]) + blob[off + 1:]):
        p.write_bytes(bad)
        with pytest.raises(ValueError):
            vecdex.load(p)
