"""Recognition-service benchmarks on real LFW photos (numbers in docs/service.md).

    python benchmarks/service.py identification --model default --json OUT.json      # end to end, open set
    python benchmarks/service.py latency --concurrency 1,8,32 --json OUT.json        # loopback p50 / p99
    python benchmarks/service.py client --photos 200 --json OUT.json                 # client cost per photo
    python benchmarks/service.py wire --json OUT.json                                # float16 vs float32 payloads

identification: a real server (``partialface serve`` child, SQLite gallery) and the SDK. Every person
of LFW pairs.txt folds 1-6 with >= 2 photos is enrolled from their first photo (``--enrol-photos N``:
people with more than N photos, from their first N); their other photos (mated searches) and the first
photo of every other fold 1-6 person (never enrolled: non-mated searches; ``--reserved K`` keeps each
person's first K photos for enrolment, so that enrolment sizes compare on the same people and searches)
are identified with ``top_k=1`` and ``open_set=false``, so the raw top-1 score of every search is known.
Reported: rank-1 accuracy (mated), FNIR at FPIR 1 % (the threshold at which 1 % of non-mated searches
return a candidate; a mated search fails when its top-1 is not the mate or scores below it), and the
open-set decision at each of the model's calibrated thresholds: its FPIR and FNIR.

latency: the server holds ``--subjects`` enrolled subjects (synthetic unit templates written through
the gallery API before it starts); ``c`` client threads, each with its own connection, send
precomputed payloads of real faces (verify against one subject, identify top-5) until ``--requests``
answers or ``--seconds`` have passed; p50 / p99 of the request latency over loopback.

client: what a client spends per photo: preparation as the model records it (decode, then the crop box,
or face detection + five-point alignment), protection (one random rank, scaled) and serialisation
(float16 wire payload), one photo at a time on one thread.

wire: each face of LFW folds 7-8 is protected once and embedded from a float32 and from a float16
payload of the same channels: the cosine between the two templates, and the verification accuracy
(10-fold LFW protocol) of each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from tqdm import tqdm

from partialface.client import Client, ClientRecord
from partialface.client.prepare import prepare_photo, preparer_for
from partialface.data import people_in_folds, read_lfw_pairs
from partialface.data.pixels import pixels_to_faces
from partialface.errors import PartialFaceError
from partialface.evaluation.metrics import kfold_accuracy, roc_auc
from partialface.gallery import open_gallery
from partialface.jsonfile import write_json
from partialface.server.calibration import thresholds_at
from partialface.server.deployment import DeployedModel
from partialface.server.launch import serve_in_child
from partialface.wire import MEDIA_TYPE, WireLimits, decode_payload, encode_payload

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


def _child_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def _photos(person: str) -> list[Path]:
    return sorted((LFW / "images" / person).glob("*.jpg"))


# ---------------------------------------------------------------------------------------------- identification
def identification_protocol(folds=range(1, 7), enrol_photos: int = 1, reserved: int | None = None
                            ) -> tuple[dict[str, list[Path]], list[tuple[Path, str | None]]]:
    """(enrolled person -> enrolment photos, searches [(photo, mate or None)]) of the people of LFW pairs ``folds``.

    Each person's first ``reserved`` photos (default ``enrol_photos``) are kept for enrolment: a person with
    more is enrolled from the first ``enrol_photos`` of them and searched with the photos after them; anyone
    else is never enrolled, and their first photo is a non-mated search. Runs with one ``reserved`` and
    different ``enrol_photos`` share their people, gallery size and searches.
    """
    reserved = enrol_photos if reserved is None else reserved
    if enrol_photos < 1:
        raise PartialFaceError(f"enrolment photos must be at least 1, got {enrol_photos}")
    if enrol_photos > reserved:
        raise PartialFaceError(f"enrolment photos must be between 1 and the reserved {reserved}, got {enrol_photos}")
    people = sorted(people_in_folds(read_lfw_pairs(LFW / "pairs.txt"), folds))
    photos = {p: _photos(p) for p in people}
    enrolled = {p: ph[:enrol_photos] for p, ph in photos.items() if len(ph) > reserved}
    searches = [(ph, p) for p in enrolled for ph in photos[p][reserved:]]
    searches += [(ph[0], None) for p, ph in photos.items() if p not in enrolled]
    return enrolled, searches


def identification_metrics(results: list[dict], thresholds: dict[str, float]) -> dict:
    """Rank-1, FNIR at FPIR 1 %, and FPIR / FNIR at each calibrated (verification) threshold."""
    mated = [r for r in results if r["mate"] is not None]
    non_mated = np.array([r["score"] for r in results if r["mate"] is None])
    hit = np.array([r["subject"] == r["mate"] for r in mated])
    mated_scores = np.array([r["score"] for r in mated])

    def rates(t: float) -> dict:
        return {"threshold": t, "fpir": float((non_mated >= t).mean()),
                "fnir": float(1 - (hit & (mated_scores >= t)).mean())}

    try:  # the threshold at which 1 % of the non-mated searches return a candidate
        (_, at_fpir), = thresholds_at(mated_scores, non_mated, [0.01])[0].items()
    except PartialFaceError:  # fewer than 100 non-mated searches (a smoke run)
        at_fpir = None
    return {
        "enrolled": len({r["mate"] for r in mated}),
        "mated_searches": len(mated),
        "non_mated_searches": int(len(non_mated)),
        "rank1": float(hit.mean()),
        "fpir_1e-2": rates(at_fpir) if at_fpir is not None else None,
        "at_calibrated_far": {far: rates(t) for far, t in thresholds.items()},
    }


def run_identification(args) -> dict:
    enrolled, searches = identification_protocol(args.people_folds, args.enrol_photos, args.reserved)
    if args.limit:  # a smoke run: the first people, their searches, as many strangers
        enrolled = dict(list(enrolled.items())[: args.limit])
        searches = ([s for s in searches if s[1] in enrolled][: args.limit * 2]
                    + [s for s in searches if s[1] is None][: args.limit])
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gallery.db"
        with open_gallery(url) as gallery:
            key = gallery.keys.create("admin", "benchmark")[1]
        serve = ["--model", args.model, "--gallery", url, "--threads", str(args.threads), "--log-level", "warning"]
        with serve_in_child(serve, Path(tmp) / "server.log", env=_child_env(args.threads)) as server:
            local, seeds, clients = threading.local(), itertools.count(), []

            def client() -> Client:  # one per worker thread: a Client's rank generator is not shared
                if not hasattr(local, "client"):
                    local.client = Client(server.url, key, seed=next(seeds))
                    clients.append(local.client)
                return local.client

            def enroll(item):
                client().enroll(item[0], item[1])

            def search(item):
                top = client().identify(item[0], top_k=1, open_set=False)["candidates"][0]
                return {"photo": item[0].name, "mate": item[1], "subject": top["subject"], "score": top["score"]}

            start = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                list(tqdm(pool.map(enroll, enrolled.items()), "enrolling", len(enrolled), mininterval=30))
                enrol_s = time.perf_counter() - start
                results = list(tqdm(pool.map(search, searches), "identifying", len(searches), mininterval=30))
            total_s = time.perf_counter() - start
            info = clients[0].model_info()
            for c in clients:
                c.close()
    if args.raw:
        write_json(args.raw, results)
    metrics = identification_metrics(results, info["thresholds"])
    metrics.update(model=info["model"], people_folds=args.people_folds, enrol_photos=args.enrol_photos, reserved=args.reserved,
                   default_far=info["default_far"], strategy=info["strategy"],
                   workers=args.workers, enrol_s=enrol_s,
                   search_s=total_s - enrol_s, per_search_ms=1000 * (total_s - enrol_s) / len(searches))
    return metrics


# ---------------------------------------------------------------------------------------------- latency
def _percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1000
    return {"count": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def _load(url: str, key: str, route: str, params: dict, payloads: list[bytes], clients: int, requests: int,
          seconds: float) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors = []

    def worker(index: int) -> None:
        with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {key}",
                                                             "Content-Type": MEDIA_TYPE}) as http:
            i = index
            while time.monotonic() < deadline:
                with lock:
                    if len(latencies) >= requests:
                        return
                begin = time.perf_counter()
                response = http.post(route, content=payloads[i % len(payloads)], params=params)
                elapsed = time.perf_counter() - begin
                if response.status_code != 200:
                    errors.append(response.text)
                    return
                with lock:
                    latencies.append(elapsed)
                i += clients

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{route}: {errors[0]}")
    return {**_percentiles(latencies), "throughput_rps": len(latencies) / (time.perf_counter() - wall)}


def run_latency(args) -> dict:
    deployed = DeployedModel.load(args.model)
    rng = np.random.default_rng(0)
    photos = [p for person in sorted((LFW / "images").iterdir())[:64] for p in sorted(person.glob("*.jpg"))[:1]][:32]
    out = {"model": deployed.id, "subjects": args.subjects, "server_threads": args.threads, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gallery.db"
        with open_gallery(url) as gallery:
            gallery.bind_model(deployed.id, deployed.dim)
            templates = rng.standard_normal((args.subjects, deployed.dim)).astype(np.float32)
            templates /= np.linalg.norm(templates, axis=1, keepdims=True)
            gallery.enroll_many({f"subject-{i}": templates[i : i + 1] for i in range(args.subjects)})
            key = gallery.keys.create("recognize", "benchmark")[1]
        serve = ["--model", args.model, "--gallery", url, "--threads", str(args.threads), "--log-level", "warning"]
        with serve_in_child(serve, Path(tmp) / "server.log", env=_child_env(args.threads)) as server:
            with Client(server.url, key, seed=0) as client:
                payloads = [client.encode([p]) for p in photos]
            routes = {"verify": ("/v1/subjects/subject-0/verify", {}), "identify": ("/v1/identify", {"top_k": 5})}
            _load(server.url, key, "/v1/identify", {}, payloads, 1, 8, 60)  # warm-up
            for name, (route, params) in routes.items():
                for clients in args.concurrency:
                    result = _load(server.url, key, route, params, payloads, clients, args.requests, args.seconds)
                    out[f"{name}_c{clients}"] = result
                    print(f"{name:8s} {clients:2d} clients: p50 {result['p50_ms']:8.1f} ms  p99 {result['p99_ms']:8.1f} ms"
                          f"  ({result['count']} requests, {result['throughput_rps']:.1f}/s)", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- client cost
def run_client(args) -> dict:
    deployed = DeployedModel.load(args.model)
    record = ClientRecord.from_dict(deployed.client_record())
    prepare = preparer_for(record.preparation)
    generator = torch.Generator().manual_seed(0)
    photos = sorted((LFW / "images").glob("*/*.jpg"))[:: max(1, 10000 // args.photos)][: args.photos]
    steps = {"prepare": [], "protect": [], "encode": []}
    for photo in [photos[0]] + photos:  # the first one again as warm-up
        t0 = time.perf_counter()
        face = prepare_photo(prepare, photo)[0]
        t1 = time.perf_counter()
        sent = record.protect(pixels_to_faces(torch.from_numpy(face[None])), generator, "float16")
        t2 = time.perf_counter()
        encode_payload(sent, model=record.model, plan=record.plan_fingerprint, scale=record.scale_fingerprint)
        t3 = time.perf_counter()
        for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2)):
            steps[name].append(seconds)
    out = {"model": deployed.id, "preparation": record.preparation["kind"], "photos": len(photos),
           "torch_threads": torch.get_num_threads()}
    for name, values in steps.items():
        out[name] = _percentiles(values[1:])
    out["total"] = _percentiles([sum(v) for v in zip(*(values[1:] for values in steps.values()))])
    return out


# ---------------------------------------------------------------------------------------------- wire dtype
def run_wire(args) -> dict:
    deployed = DeployedModel.load(args.model)
    record = ClientRecord.from_dict(deployed.client_record())
    prepare = preparer_for(record.preparation)
    pairs = [p for p in read_lfw_pairs(LFW / "pairs.txt") if p.fold in args.folds]
    images = sorted({path for p in pairs for path in (p.path_a, p.path_b)})
    index = {path: i for i, path in enumerate(images)}
    generator = torch.Generator().manual_seed(0)
    ids = {"model": record.model, "plan": record.plan_fingerprint, "scale": record.scale_fingerprint}
    templates = {"float32": [], "float16": []}
    batch_limits = WireLimits(max_faces=64, max_bytes=1 << 30)  # 64 faces per payload here, not a request
    for start in range(0, len(images), 64):
        faces = np.stack([prepare_photo(prepare, LFW / "images" / p)[0] for p in images[start : start + 64]])
        sent = record.protect(pixels_to_faces(torch.from_numpy(faces)), generator)
        for dtype, out in templates.items():
            channels = decode_payload(encode_payload(sent, dtype=dtype, **ids), batch_limits).channels
            out.append(deployed.embed(channels).numpy())
    t32, t16 = (np.concatenate(templates[d]).astype(np.float64) for d in ("float32", "float16"))
    cosine = (t32 * t16).sum(axis=1)
    a = np.array([index[p.path_a] for p in pairs])
    b = np.array([index[p.path_b] for p in pairs])
    issame = np.array([p.issame for p in pairs])
    out = {"model": deployed.id, "images": len(images), "pairs": len(pairs),
           "template_cosine_16_vs_32": {"mean": float(cosine.mean()), "min": float(cosine.min())}}
    for dtype, t in (("float32", t32), ("float16", t16)):
        scores = (t[a] * t[b]).sum(axis=1)
        accuracy, std, _ = kfold_accuracy(scores, issame)
        out[dtype] = {"accuracy": accuracy, "accuracy_std": std, "auc": roc_auc(scores, issame)}
    out["pair_score_max_abs_diff"] = float(np.abs((t32[a] * t32[b]).sum(1) - (t16[a] * t16[b]).sum(1)).max())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=("identification", "latency", "client", "wire"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server / this process")
    parser.add_argument("--json", help="write the result here (merged into an existing file under the benchmark's key)")
    parser.add_argument("--limit", type=int, default=0, help="identification: only the first N enrolled people (smoke runs)")
    parser.add_argument("--raw", help="identification: also write every search (photo, mate, top-1 subject, score) here")
    parser.add_argument("--workers", type=int, default=2, help="identification: client threads (protect while the server embeds)")
    parser.add_argument("--concurrency", type=lambda t: [int(v) for v in t.split(",")], default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=96, help="latency: answers per setting (bound)")
    parser.add_argument("--seconds", type=float, default=120, help="latency: seconds per setting (bound)")
    parser.add_argument("--subjects", type=int, default=1000, help="latency: gallery size")
    parser.add_argument("--photos", type=int, default=200, help="client: photos timed")
    folds = lambda t: [int(v) for v in t.split(",")]  # noqa: E731
    parser.add_argument("--folds", type=folds, default=[7, 8], help="wire: the pairs.txt folds whose photos are used")
    parser.add_argument("--people-folds", type=folds, default=list(range(1, 7)),
                        help="identification: pairs.txt folds whose people are enrolled and searched (default 1-6; "
                             "7,8 for a development twin, which never saw them)")
    parser.add_argument("--enrol-photos", type=int, default=1,
                        help="identification: photos each subject is enrolled from (the server fuses them); people "
                             "with fewer than this + 1 photos are never enrolled")
    parser.add_argument("--reserved", type=int, help="identification: each person's first photos kept for enrolment "
                        "(default --enrol-photos): compare enrolment sizes on the same people and searches")
    args = parser.parse_args(argv)
    if not (LFW / "images").is_dir():
        print(f"{LFW} is absent: these benchmarks need the real LFW photos", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    run = {"identification": run_identification, "latency": run_latency, "client": run_client, "wire": run_wire}
    try:  # a bad setting (e.g. --enrol-photos above --reserved) is refused before any server starts
        result = {**run[args.benchmark](args), "command": "python benchmarks/service.py " + " ".join(sys.argv[1:])}
    except PartialFaceError as error:
        print(f"service.py: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    if args.json:
        path = Path(args.json)
        merged = json.loads(path.read_text()) if path.exists() else {}
        key = f"{args.benchmark}:{args.model}"
        if args.enrol_photos != 1 or args.reserved:  # another enrolment protocol: a key of its own
            key += f":enrol{args.enrol_photos}" + (f"of{args.reserved}" if args.reserved else "")
        merged[key] = result
        write_json(path, merged)
    return 0


if __name__ == "__main__":
    sys.exit(main())
