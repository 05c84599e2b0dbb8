"""`fakelens serve --model RUN [--host 127.0.0.1 --port 8000]`: the local web page.

Open http://127.0.0.1:8000 in a browser, drop a video, and read its report (verdict, segments,
timeline, face crops with saliency); `POST /api/detect` returns the same JSON as `fakelens
detect`'s report.json, and the API is documented at /docs. The server binds to the loopback
address unless --host says otherwise; uploads are capped (--max-upload-mb, --max-duration,
--max-side), probed rather than trusted by name, and removed after the analysis; one video is
analysed at a time and at most --max-queue requests wait (more get 503). Needs the [web] extra.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    from fakelens.inference.device import DEVICE_HELP

    p = subparsers.add_parser("serve", help="local web page: upload a video, get its forensic report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="RUN_OR_CHECKPOINT",
                   help="a `fakelens train` run folder or a .ckpt file")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--threshold", type=float, default=0.5, help="P(fake) decision threshold (default 0.5)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload accepted (default 200 MB)")
    p.add_argument("--max-duration", type=float, default=600.0, help="longest video analysed, seconds (default 600)")
    p.add_argument("--max-side", type=int, default=4096, help="largest frame side analysed, pixels (default 4096)")
    p.add_argument("--max-queue", type=int, default=4, help="requests waiting beyond the one analysed (default 4)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name browsers may use to reach this server besides the loopback names and "
                        "--host (repeatable; the Host header of other requests is refused: DNS rebinding)")
    p.add_argument("--no-saliency", action="store_true", help="skip the Grad-CAM maps (faster)")
    p.add_argument("--no-face", choices=["error", "full_frame"], default=None,
                   help="a video without a face: not analysed, or score the whole frame (stated in the report)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import sys

    from fakelens.errors import FakelensError, MissingDependencyError

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(f"`fakelens serve` needs the web extra ({', '.join(missing)} missing): "
                                     "pip install 'fakelens[web]'")
    if not 0 < args.port < 65536:
        raise FakelensError(f"--port must be in 1..65535, got {args.port}")
    from fakelens.inference.runs import resolve_checkpoint

    resolve_checkpoint(args.model)  # a wrong run path is said at once, before torch loads
    import uvicorn

    from fakelens.inference.device import resolve_device
    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.web.app import create_app
    from fakelens.web.limits import Limits

    limits = Limits(max_upload_mb=args.max_upload_mb, max_duration=args.max_duration, max_side=args.max_side,
                    max_queue=args.max_queue)
    device = resolve_device(args.device)
    run_ = load_run(args.model, device=device)
    analyser = Analyser(Predictor(run_, no_face=args.no_face, device=device), threshold=args.threshold,
                        saliency=not args.no_saliency)
    from fakelens.web.app import LOOPBACK_HOSTS

    bound = [] if args.host in ("0.0.0.0", "::", "") else [f"[{args.host}]" if ":" in args.host else args.host]
    app = create_app(analyser, limits, allowed_hosts=[*LOOPBACK_HOSTS, *bound, *args.allow_host])
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"fakelens serve: warning: binding {args.host}: other machines can upload videos to this server",
              file=sys.stderr)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"fakelens serve: http://{host}:{args.port}  (model {run_.cfg.model.name} from {run_.checkpoint}; "
          f"API at /openapi.json; Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
