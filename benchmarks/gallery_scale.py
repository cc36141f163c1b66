"""Gallery scale: SQLite's exact in-memory search against pgvector's HNSW, on synthetic templates.

    scripts/postgres_server.sh start /tmp/pf-bench-pg        # prints the URL to pass as --postgres
    OMP_NUM_THREADS=1 python benchmarks/gallery_scale.py --sizes 10000,100000 --postgres URL \
        --json docs/gallery_scale.json

Templates are 512-d unit vectors clustered like real ones: each subject has ``--per-subject`` templates
scattered around a random centre (template-centre cosine about 0.74, template-template about 0.55, as
for the same face under different random ranks), different subjects nearly orthogonal. Queries are new
samples around enrolled subjects' centres. For each size the script reports, per store: the load time,
the query latency (p50/p99, top-5, strategy ``max`` and ``fused``), recall@1 of the HNSW answers
against the exact ones (SQLite's search is exact), memory (the SQLite process's resident-set growth
when its matrix is built; the PostgreSQL index and table sizes), and the cost of deleting a subject.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from partialface.atomic import atomic_write
from partialface.gallery import open_gallery

STRATEGIES = ("max", "fused")
SPREAD = 0.9  # noise norm relative to the centre: cos(template, centre) = 1/sqrt(1 + SPREAD^2)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def batches(size: int, per_subject: int, dim: int, seed: int, subjects_per_batch: int = 2000):
    """``{name: templates}`` batches adding up to ``size`` templates, generated chunk by chunk."""
    rng = np.random.default_rng(seed)
    subjects = size // per_subject
    for start in range(0, subjects, subjects_per_batch):
        count = min(subjects_per_batch, subjects - start)
        centres = unit(rng.standard_normal((count, dim)))
        noise = rng.standard_normal((count, per_subject, dim)) * (SPREAD / np.sqrt(dim))
        templates = unit(centres[:, None, :] + noise)
        yield {f"s{start + i:07d}": templates[i] for i in range(count)}


def queries(size: int, per_subject: int, dim: int, seed: int, count: int) -> np.ndarray:
    """Fresh samples around the centres of ``count`` enrolled subjects (same generator as batches)."""
    rng = np.random.default_rng(seed)
    subjects = size // per_subject
    picked = set(np.random.default_rng(seed + 1).choice(subjects, count, replace=False).tolist())
    centres = []
    for start in range(0, subjects, 2000):
        n = min(2000, subjects - start)
        c = unit(rng.standard_normal((n, dim)))
        rng.standard_normal((n, per_subject, dim))  # keep the stream aligned with batches()
        centres += [c[i] for i in range(n) if start + i in picked]
    noise = np.random.default_rng(seed + 2).standard_normal((count, dim)) * (SPREAD / np.sqrt(dim))
    return unit(np.stack(centres) + noise)


def timed_searches(gallery, probes: np.ndarray, strategy: str) -> tuple[list[str], dict]:
    gallery.search(probes[0], 5, strategy)  # warm: caches, pool, plan
    answers, times = [], []
    for q in probes:
        t0 = time.perf_counter()
        answers.append(gallery.search(q, 5, strategy)[0].subject)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return answers, {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def load(gallery, size: int, args) -> float:
    t0 = time.perf_counter()
    for batch in batches(size, args.per_subject, args.dim, args.seed):
        gallery.enroll_many(batch)
    return time.perf_counter() - t0


def bench_sqlite(size: int, probes: np.ndarray, args, folder: Path) -> tuple[dict, dict]:
    path = folder / f"gallery_{size}.db"
    row: dict = {"store": "sqlite-exact"}
    with open_gallery(f"sqlite:///{path}") as g:
        g.ensure_schema(args.dim)
        row["load_s"] = round(load(g, size, args), 1)
    with open_gallery(f"sqlite:///{path}") as g:  # a fresh process-like start: the matrix is built on first search
        before = rss_bytes()
        t0 = time.perf_counter()
        g.search(probes[0], 1)
        row["index_build_s"] = round(time.perf_counter() - t0, 2)
        row["memory_mb"] = round((rss_bytes() - before) / 2**20, 1)
        row["file_mb"] = round(path.stat().st_size / 2**20, 1)
        exact = {}
        for strategy in STRATEGIES:
            exact[strategy], row[f"latency_{strategy}"] = timed_searches(g, probes, strategy)
        t0 = time.perf_counter()
        g.delete_subject("s0000000")
        g.search(probes[0], 1)  # the deletion makes the next search rebuild the matrix
        row["delete_subject_s"] = round(time.perf_counter() - t0, 2)
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return row, exact


def bench_postgres(size: int, probes: np.ndarray, exact: dict, args) -> list[dict]:
    import psycopg

    with psycopg.connect(args.postgres, autocommit=True) as conn:
        schema = f"bench_{size}"
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema},public"
    rows = []
    with open_gallery(url, exact_below=0) as g, psycopg.connect(url, autocommit=True) as conn:
        g.ensure_schema(args.dim)
        g.drop_indexes()  # bulk import first, then build the indexes
        load_s = load(g, size, args)
        conn.execute("VACUUM ANALYZE pf_subjects")
        t0 = time.perf_counter()
        g.build_indexes(workers=args.workers, memory=args.maintenance_memory)
        build_s = time.perf_counter() - t0
        sizes = {
            name: conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()[0] / 2**20
            for name in ("pf_templates", "pf_templates_hnsw", "pf_subjects_mean_hnsw", "pf_subjects_fused_hnsw")
        }
        for ef in args.ef_search:
            g.ef_search = ef
            row = {"store": f"pgvector-hnsw ef_search={ef}", "load_s": round(load_s, 1), "index_build_s": round(build_s, 1),
                   "template_index_mb": round(sizes["pf_templates_hnsw"], 1),
                   "subject_indexes_mb": round(sizes["pf_subjects_mean_hnsw"] + sizes["pf_subjects_fused_hnsw"], 1),
                   "table_mb": round(sizes["pf_templates"], 1)}
            for strategy in STRATEGIES:
                answers, row[f"latency_{strategy}"] = timed_searches(g, probes, strategy)
                row[f"recall@1_{strategy}"] = round(float(np.mean([a == b for a, b in zip(answers, exact[strategy])])), 4)
            rows.append(row)
        t0 = time.perf_counter()
        g.delete_subject("s0000000")  # includes the VACUUM that takes it out of the indexes
        rows[-1]["delete_subject_s"] = round(time.perf_counter() - t0, 2)
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="template counts, comma-separated")
    ap.add_argument("--postgres", help="a PostgreSQL URL (pgvector installed); without it only SQLite runs")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--per-subject", type=int, default=5)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef-search", default="40,100", help="HNSW ef_search values to measure")
    ap.add_argument("--workers", type=int, default=1, help="parallel workers for the HNSW build")
    ap.add_argument("--maintenance-memory", default="2GB", help="maintenance_work_mem for the HNSW build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folder", default=None, help="where the SQLite files go (default: a temp folder)")
    ap.add_argument("--json", help="append the results to this JSON file")
    args = ap.parse_args(argv)
    args.ef_search = [int(v) for v in args.ef_search.split(",")]
    results = []
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        for size in (int(v) for v in args.sizes.split(",")):
            probes = queries(size, args.per_subject, args.dim, args.seed, args.queries)
            row, exact = bench_sqlite(size, probes, args, Path(folder))
            rows = [row] + (bench_postgres(size, probes, exact, args) if args.postgres else [])
            for r in rows:
                r["templates"] = size
                print(json.dumps(r), flush=True)
            results += rows
    if args.json:
        path = Path(args.json)
        previous = json.loads(path.read_text()) if path.exists() else []
        with atomic_write(path, "w") as f:
            f.write(json.dumps(previous + results, indent=1) + "\n")


if __name__ == "__main__":
    main()
