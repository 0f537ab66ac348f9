#!/usr/bin/env python3
"""Build the embedded demo data set python/vecdex/data/debian_2k.npz.

Input: ../shared/data/debian (relative to the repository root; override with --data-dir):
  base.npy       float32 (63666, 384), L2-normalised all-MiniLM-L6-v2 embeddings of the
                 Debian 12 (bookworm, main, amd64) package descriptions
  items.parquet  per-row metadata (package, section, summary, ...)

Output: a .npz (zip of .npy files) with
  vectors    float16 (2000, 384)  rows of base.npy, rounded to float16 to halve the size
                                  (vecdex.datasets.load_debian_demo() converts back to float32
                                  and re-normalises to unit length)
  names      <U   (2000,)         Debian package names
  summaries  <U   (2000,)         one-line package summaries
  sections   <U   (2000,)         Debian archive sections ("python", "net", "games", ...)
  rows       int32 (2000,)        row of each item in base.npy / items.parquet

Selection (deterministic, seed 0): a few well-known packages (curl, git, vim, ...) are always
kept so the demo has familiar queries; the rest is a stratified random sample over the 58
sections, each section getting a share proportional to its size (largest-remainder rounding,
at least one row per section). Rows are stored in base.npy order.

The output is byte-for-byte reproducible: the zip is written with fixed timestamps.

Needs numpy and pyarrow (not vecdex), e.g.
  python3 -m venv /tmp/datavenv && /tmp/datavenv/bin/pip install numpy pyarrow
  /tmp/datavenv/bin/python bench/make_demo_data.py
"""
from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "debian"
DEFAULT_OUT = REPO / "python" / "vecdex" / "data" / "debian_2k.npz"

N_ROWS = 2000
SEED = 0
# Kept whatever the random draw gives, so that `python -m vecdex.demo` can show familiar packages.
WELL_KNOWN = [
    "bash", "coreutils", "curl", "wget", "git", "vim", "emacs", "nginx", "apache2",
    "openssh-server", "postgresql", "sqlite3", "python3", "python3-numpy", "htop",
    "firefox-esr", "gcc", "gimp", "ffmpeg", "tmux",
]


def section_quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """Proportional allocation of n rows over sections, >= 1 each, largest remainder rounding."""
    total = sum(counts.values())
    names = sorted(counts)
    raw = {s: n * counts[s] / total for s in names}
    quota = {s: max(1, int(np.floor(raw[s]))) for s in names}
    # Hand out / take back the difference by fractional remainder (ties broken by name).
    by_remainder = sorted(names, key=lambda s: (-(raw[s] - np.floor(raw[s])), s))
    i = 0
    while sum(quota.values()) < n:
        s = by_remainder[i % len(names)]
        if quota[s] < counts[s]:
            quota[s] += 1
        i += 1
    by_surplus = sorted(names, key=lambda s: (raw[s] - quota[s], s))  # most over-allocated first
    i = 0
    while sum(quota.values()) > n:
        s = by_surplus[i % len(names)]
        if quota[s] > 1:
            quota[s] -= 1
        i += 1
    return quota


def select_rows(packages: list[str], sections: list[str], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sections_arr = np.asarray(sections)
    uniq, counts = np.unique(sections_arr, return_counts=True)
    quota = section_quotas(dict(zip(uniq.tolist(), counts.tolist())), n)

    first_row = {}
    for i, p in enumerate(packages):
        first_row.setdefault(p, i)
    forced = sorted(first_row[p] for p in WELL_KNOWN if p in first_row)
    forced_by_section: dict[str, list[int]] = {}
    for r in forced:
        forced_by_section.setdefault(sections[r], []).append(r)

    chosen: list[int] = []
    for s in sorted(quota):  # fixed order -> fixed RNG stream
        members = np.flatnonzero(sections_arr == s)
        keep = forced_by_section.get(s, [])
        q = max(quota[s], len(keep))
        rest = np.setdiff1d(members, np.asarray(keep, dtype=members.dtype))
        pick = rng.choice(rest, size=q - len(keep), replace=False) if q > len(keep) else []
        chosen.extend(keep)
        chosen.extend(int(x) for x in pick)
    chosen = sorted(set(chosen))
    # Forced rows may have pushed a section over quota: drop random non-forced rows to get n.
    if len(chosen) > n:
        forced_set = set(forced)
        droppable = np.array([r for r in chosen if r not in forced_set])
        drop = set(rng.choice(droppable, size=len(chosen) - n, replace=False).tolist())
        chosen = [r for r in chosen if r not in drop]
    assert len(chosen) == n, len(chosen)
    return np.asarray(chosen, dtype=np.int64)


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps so the bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("-n", type=int, default=N_ROWS)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()

    import pyarrow.parquet as pq  # only this script needs pyarrow

    base = np.load(args.data_dir / "base.npy", mmap_mode="r")
    cols = pq.read_table(args.data_dir / "items.parquet",
                         columns=["package", "section", "summary"]).to_pydict()
    packages, sections, summaries = cols["package"], cols["section"], cols["summary"]
    if base.shape[0] != len(packages):
        raise SystemExit(f"base.npy has {base.shape[0]} rows but items.parquet {len(packages)}")

    rows = select_rows(packages, sections, args.n, args.seed)
    vectors = np.asarray(base[rows], dtype=np.float32).astype(np.float16)
    arrays = {
        "vectors": vectors,
        "names": np.array([packages[r] for r in rows], dtype=str),
        "summaries": np.array([" ".join(str(summaries[r]).split()) for r in rows], dtype=str),
        "sections": np.array([sections[r] for r in rows], dtype=str),
        "rows": rows.astype(np.int32),
    }
    write_npz_deterministic(args.out, arrays)

    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    n_sec = len(set(arrays["sections"].tolist()))
    kept = [p for p in WELL_KNOWN if p in set(arrays["names"].tolist())]
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest[:16]}...)")
    print(f"{len(rows)} rows, {n_sec} sections, vectors {vectors.dtype}{vectors.shape}")
    print(f"well-known packages kept: {', '.join(kept)}")


if __name__ == "__main__":
    main()
