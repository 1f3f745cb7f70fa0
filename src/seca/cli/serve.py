"""``seca serve``: the model behind HTTP and a web page, learning new tasks while it answers."""

from __future__ import annotations

import argparse

from .common import count, device_flag, port


def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP with a web page; it learns new classes while serving",
        description="Serve MODEL: predictions, new tasks learned as jobs (one at a time, on a copy, "
        "swapped in once saved to MODEL), evaluation, and a web page at /. See "
        "docs/serve.md.",
    )
    p.add_argument("model", metavar="MODEL", help="the model file to serve and to grow (seca new, run or learn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port, 1 to 65535 (default 8000)")
    p.add_argument(
        "--token",
        help="every request that changes the model must send 'Authorization: Bearer TOKEN' "
        "(default: $SECA_SERVE_TOKEN; none: anyone who can reach the server may)",
    )
    p.add_argument("--insecure", action="store_true", help="allow a --host other than loopback without a token")
    p.add_argument("--max-request-mb", type=count, default=512, help="the largest request body (default 512 MiB)")
    p.add_argument(
        "--max-files",
        type=count,
        default=10_000,
        help="the most files, zip entries included, in one request (default 10000)",
    )
    p.add_argument(
        "--max-zip-mb", type=count, default=2048, help="the most a request's zip may unpack to (default 2048 MiB)"
    )
    device_flag(p)
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from ..serve import check_host, run_server

    check_host(args.host, args.token or _env_token(), args.insecure)  # before the model loads
    from ..serve.uploads import Limits

    limits = Limits(request_bytes=args.max_request_mb * 2**20, files=args.max_files, zip_bytes=args.max_zip_mb * 2**20)
    run_server(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        insecure=args.insecure,
        limits=limits,
        device=args.device,
    )
    return 0


def _env_token():
    import os

    from ..serve import TOKEN_VARIABLE

    return os.environ.get(TOKEN_VARIABLE) or None
