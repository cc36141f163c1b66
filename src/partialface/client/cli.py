"""``partialface client``: the SDK from the shell.

    partialface client --server http://127.0.0.1:8000 --key KEY enroll NAME PHOTO [PHOTO ...]
    partialface client --server URL --key KEY verify NAME PHOTO --json     # {"match": bool, "score": float, ...}
    partialface client --server URL --key KEY identify PHOTO --json        # {"candidates": [{"subject", "score"}], ...}
    partialface client --server URL --key KEY compare PHOTO_A PHOTO_B
    partialface client --server URL --key KEY delete NAME
    partialface client --server URL --key KEY subjects
    partialface client --server URL --key KEY record --out record.json     # pin the model's client record

``PARTIALFACE_API_KEY`` may replace ``--key`` (a key on the command line is visible to other users of
the machine in the process list; the variable is not), ``PARTIALFACE_SERVER`` ``--server``.
"""

from __future__ import annotations

import argparse
import json
import os

from ..errors import PartialFaceError

__all__ = ["add_client_arguments"]


def add_client_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=os.environ.get("PARTIALFACE_SERVER", "http://127.0.0.1:8000"),
                   help="server URL (default: $PARTIALFACE_SERVER or http://127.0.0.1:8000)")
    p.add_argument("--key", default=None, help="API key (default: $PARTIALFACE_API_KEY)")
    p.add_argument("--record", help="a pinned client record JSON (default: fetched from the server)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="payload values (default float16)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--seed", type=int, default=None,
                   help="draw the same ranks on every run (reproducible reports and tests; leave it unset in a "
                   "deployment, where each query's rank is drawn from the operating system's entropy)")
    sub = p.add_subparsers(dest="client_command", required=True)

    c = sub.add_parser("enroll", help="enroll a subject from photos (one template per photo)")
    c.add_argument("name")
    c.add_argument("photos", nargs="+", metavar="PHOTO")
    c.add_argument("--metadata", type=json.loads, default=None, help="JSON object stored with a new subject")
    c = sub.add_parser("verify", help="is the face in PHOTO the subject NAME?")
    c.add_argument("name")
    c.add_argument("photo")
    c = sub.add_parser("identify", help="who is the face in PHOTO?")
    c.add_argument("photo")
    c.add_argument("--top-k", type=int, default=5)
    c.add_argument("--all", action="store_true", help="also candidates below the threshold (closed set)")
    c = sub.add_parser("compare", help="are the faces of two photos the same person?")
    c.add_argument("photo_a")
    c.add_argument("photo_b")
    c = sub.add_parser("delete", help="delete a subject and all its templates")
    c.add_argument("name")
    c = sub.add_parser("subjects", help="list enrolled subjects")
    c.add_argument("--limit", type=int, default=1000)
    c.add_argument("--offset", type=int, default=0)
    c = sub.add_parser("record", help="save the model's client record (to pin it with --record)")
    c.add_argument("--out", required=True)
    for name, q in sub.choices.items():
        q.add_argument("--json", action="store_true", help="print the server's answer as JSON")
        if name in ("verify", "identify", "compare"):
            q.add_argument("--far", default=None, help="operating point, e.g. 1e-3 (default: the server's)")
    p.set_defaults(func=run_client)


def _save_record(client, args) -> dict:
    client.record.save(args.out)
    return client.record.to_dict()


# command -> (what it asks the server, how its answer reads for a person)
_COMMANDS = {
    "enroll": (
        lambda c, a: c.enroll(a.name, a.photos, metadata=a.metadata),
        lambda r, a: f"enrolled {r['subject']}: {len(r['template_ids'])} template(s) "
        f"(ids {', '.join(map(str, r['template_ids']))})",
    ),
    "verify": (
        lambda c, a: c.verify(a.name, a.photo, far=a.far),
        lambda r, a: f"{r['subject']}: {'match' if r['match'] else 'no match'} {_rates(r)}",
    ),
    "identify": (
        lambda c, a: c.identify(a.photo, top_k=a.top_k, far=a.far, open_set=not a.all),
        lambda r, a: "\n".join(
            f"{i}. {c['subject']}  score {c['score']:.4f}{'' if c['match'] else '  (below threshold)'}"
            for i, c in enumerate(r["candidates"], 1)
        ) or f"no match: unknown face {_rates(r)}",
    ),
    "compare": (
        lambda c, a: c.compare(a.photo_a, a.photo_b, far=a.far),
        lambda r, a: f"{'same person' if r['match'] else 'different people'} {_rates(r)}",
    ),
    "delete": (
        lambda c, a: c.delete(a.name),
        lambda r, a: f"deleted {r['subject']} ({r['templates_deleted']} template(s))",
    ),
    "subjects": (
        lambda c, a: c.subjects(limit=a.limit, offset=a.offset),
        lambda r, a: "\n".join(f"{s['name']}  {s['templates']} template(s)  {s['created_at']}" for s in r)
        or "no subjects",
    ),
    "record": (_save_record, lambda r, a: f"wrote the client record of {r['model']} to {a.out}"),
}


def _rates(result: dict) -> str:
    score = f"score {result['score']:.4f}, " if "score" in result else ""
    return f"({score}threshold {result['threshold']:.4f} at FAR {result['far']})"


def run_client(args) -> int:
    from .sdk import Client

    key = args.key or os.environ.get("PARTIALFACE_API_KEY")
    if not key:
        raise PartialFaceError("an API key is needed: --key KEY or the PARTIALFACE_API_KEY environment variable")
    ask, describe = _COMMANDS[args.client_command]
    with Client(args.server, key, record=args.record, dtype=args.dtype, seed=args.seed,
                timeout=args.timeout) as client:
        result = ask(client, args)
    print(json.dumps(result, indent=1) if args.json else describe(result, args))
    return 0
