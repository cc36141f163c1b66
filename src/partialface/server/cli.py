"""Command line of the server side: ``partialface serve``, ``partialface keys``, ``partialface calibrate``.

    partialface keys create --gallery sqlite:///G.db --scope admin [--label L]   # the key is the last line
    partialface keys list --gallery sqlite:///G.db
    partialface keys revoke --gallery sqlite:///G.db KEY_ID
    partialface serve --model default --gallery sqlite:///G.db --host 127.0.0.1 --port 8000
    partialface serve --write-openapi docs/openapi.json                          # the schema, no server
    partialface calibrate default --images ../shared/data/celeba/images --out default.thresholds.json
"""

from __future__ import annotations

import argparse
import logging
import shlex

from ..errors import PartialFaceError
from ..outputs import check_output_file

__all__ = ["add_serve_arguments", "add_keys_arguments", "add_calibrate_arguments"]


def _far_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--far must be comma-separated numbers like 1e-3,1e-4, got {text!r}") from None
    if not values or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"every FAR must lie in (0, 1), got {text!r}")
    return values


# ---------------------------------------------------------------------------------------------- serve
def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="shipped model name or checkpoint file (default: default)")
    p.add_argument("--gallery", help="sqlite:///gallery.db, sqlite:///:memory: or postgresql://...")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--thresholds", help="decision thresholds JSON (default: beside the weights, NAME.thresholds.json)")
    p.add_argument("--far", help="default operating point, one of the calibrated FARs (default: the file's)")
    p.add_argument("--strategy", default=None, help="per-subject aggregation: max, mean or fused (default: the gallery's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for embedding (default: torch's)")
    p.add_argument("--max-faces", type=int, default=32, help="faces per payload (default 32)")
    p.add_argument("--max-bytes", type=int, default=48 * 1024 * 1024, help="bytes per request (default 48 MiB)")
    p.add_argument("--device", default="cpu", help="torch device of the model (default cpu)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--write-openapi", metavar="PATH", help="write the OpenAPI schema to PATH and exit")
    p.set_defaults(func=run_serve)


def build_service(args):
    """The :class:`RecognitionService` ``serve`` runs (also used by tests and benchmarks)."""
    from ..gallery import DEFAULT_STRATEGY, open_gallery
    from ..wire import WireLimits
    from .deployment import DeployedModel
    from .service import RecognitionService
    from .thresholds import Thresholds, thresholds_path

    if not args.gallery:
        raise PartialFaceError("--gallery is required (e.g. sqlite:///gallery.db)")
    deployed = DeployedModel.load(args.model, device=args.device)
    path = args.thresholds or thresholds_path(deployed.path)
    thresholds = Thresholds.load(path, model=deployed.id).with_default(args.far)
    limits = WireLimits(max_bytes=args.max_bytes, max_faces=args.max_faces)
    gallery = open_gallery(args.gallery)
    try:
        return RecognitionService(deployed, gallery, thresholds, args.strategy or DEFAULT_STRATEGY, limits)
    except BaseException:
        gallery.close()
        raise


def _server_modules():
    try:
        import uvicorn

        from . import app
    except ImportError as err:
        raise PartialFaceError(f"partialface serve needs the server extra (pip install 'partialface[server]'): {err}") from None
    return uvicorn, app


def run_serve(args) -> int:
    uvicorn, app = _server_modules()
    if args.write_openapi:
        print(f"wrote {app.write_openapi(args.write_openapi)}")
        return 0
    import torch

    service = build_service(args)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        info = service.info()
        print(f"serving model {info['model']} (plan {info['plan_fingerprint']}, thresholds {info['thresholds']}, "
              f"default FAR {info['default_far']}) with gallery {args.gallery}", flush=True)
        uvicorn.run(app.create_app(service), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        service.gallery.close()
    return 0


# ---------------------------------------------------------------------------------------------- keys
def add_keys_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", required=True)
    c = sub.add_parser("create", help="create an API key (printed once, as the last line)")
    c.add_argument("--scope", required=True, choices=("enroll", "recognize", "admin"))
    c.add_argument("--label", default="", help="a note for the key list")
    sub.add_parser("list", help="list keys (ids, scopes, labels; never the keys)")
    r = sub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    for q in (c, sub.choices["list"], r):
        q.add_argument("--gallery", required=True, help="the gallery database holding the keys")
    p.set_defaults(func=run_keys)


def run_keys(args) -> int:
    from ..gallery import open_gallery

    with open_gallery(args.gallery) as gallery:
        if args.keys_command == "create":
            info, key = gallery.keys.create(args.scope, args.label)
            print(f"created key {info.id} (scope {info.scope}); store it now, it is not shown again:")
            print(key)
        elif args.keys_command == "list":
            for info in gallery.keys.list():
                state = "revoked" if info.revoked else "active"
                print(f"{info.id}  {info.scope:<9}  {state:<7}  {info.created_at.isoformat(timespec='seconds')}  {info.label}")
        else:
            gallery.keys.revoke(args.key_id)
            print(f"revoked key {args.key_id}")
    return 0


# ---------------------------------------------------------------------------------------------- calibrate
def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="shipped model name or checkpoint file")
    p.add_argument("--images", required=True, help="identity folders of people the model never saw")
    p.add_argument("--max-images", type=int, default=None, help="only people with at most N photos (1: singletons)")
    p.add_argument("--pairs", help="an LFW pairs.txt whose --exclude-folds people are left out")
    p.add_argument("--exclude-folds", default="", help="comma-separated folds of --pairs to leave out, e.g. 1,2,3,4,5,6")
    p.add_argument("--out", required=True, help="thresholds JSON to write (serve reads NAME.thresholds.json beside the weights)")
    p.add_argument("--far", type=_far_list, default=[1e-3, 1e-4], help="operating points (default 1e-3,1e-4)")
    p.add_argument("--default-far", type=float, default=None, help="the default operating point (default: the first --far)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random ranks (default 0)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="payload dtype (default float16)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (e.g. a model's shipped thresholds)")
    p.set_defaults(func=run_calibrate)


def _excluded_people(pairs: str | None, folds: str) -> frozenset[str]:
    if not folds:
        return frozenset()
    if not pairs:
        raise PartialFaceError("--exclude-folds needs --pairs (the pairs.txt the folds are of)")
    from ..data import people_in_folds, read_lfw_pairs

    try:
        wanted = [int(f) for f in folds.split(",")]
        return frozenset(people_in_folds(read_lfw_pairs(pairs), wanted))
    except (OSError, ValueError) as err:
        raise PartialFaceError(f"--pairs {pairs} --exclude-folds {folds}: {err}") from None


def run_calibrate(args) -> int:
    from .calibration import calibrate
    from .deployment import DeployedModel

    default = args.default_far if args.default_far is not None else args.far[0]
    if default not in args.far:
        raise PartialFaceError(f"--default-far {default:g} is not one of --far {args.far}")
    check_output_file(args.out, "--out", args.overwrite)  # before the embedding work, not after it
    exclude = _excluded_people(args.pairs, args.exclude_folds)
    words = ["partialface", "calibrate", args.model, "--images", args.images]
    words += ["--max-images", str(args.max_images)] if args.max_images is not None else []
    words += ["--pairs", args.pairs, "--exclude-folds", args.exclude_folds] if exclude else []
    words += ["--out", args.out, "--far", ",".join(f"{f:g}" for f in args.far), "--seed", str(args.seed),
              "--dtype", args.dtype]
    deployed = DeployedModel.load(args.model)
    thresholds = calibrate(deployed, args.images, args.far, args.max_images, exclude, default, args.seed,
                           args.dtype, args.batch, shlex.join(words))
    thresholds.save(args.out)
    for far, value in thresholds.thresholds.items():
        rates = thresholds.measured[far]
        tar = "no genuine pairs" if rates["tar"] is None else f"TAR {rates['tar']:.4f}"
        print(f"FAR {far}: threshold {value:.4f} (measured FAR {rates['far']:.2e}, {tar})")
    print(f"wrote {args.out} for model {deployed.id}")
    return 0
