"""`noisebrush serve`, `noisebrush token` and `noisebrush install-plugin`: the CLI side of the bridge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from noisebrush.core.engine.budget import MEMORY_BUDGET_HELP, budget_arg
from noisebrush.core.errors import BadInput

DEFAULT_PORT = 7865  # keep equal to server.DEFAULT_PORT (not imported: fastapi loads only for `serve`)
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"  # where `noisebrush edit --server` looks by default


def add_parser(subparsers: Any) -> None:
    """Register the subcommands on the top-level parser's `add_subparsers()` object."""
    p = subparsers.add_parser(
        "serve",
        help="serve the engine over HTTP for the Krita/GIMP plugins",
        description="Serve the engine over HTTP (OpenAPI at GET /v1/openapi.json, with the token).",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument(
        "--max-body-mb", type=float, default=64.0, help="largest request body in MiB (default: 64)"
    )
    p.add_argument(
        "--max-pixels", type=int, default=4096 * 4096, help="largest image in pixels (default: 4096*4096)"
    )
    p.add_argument("--max-queued", type=int, default=64, help="most jobs waiting at once (default: 64)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host name (e.g. the machine's LAN name); repeatable",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="folder of the job journal, which keeps jobs across restarts (default: the token file's folder)",
    )
    p.add_argument(
        "--keep-hours",
        type=_positive,
        default=24.0,
        help="how long the journal keeps a finished job's result (default: 24)",
    )
    p.add_argument(
        "--keep-mb",
        type=_positive,
        default=1024.0,
        help="most MiB of results the journal keeps; the oldest go first (default: 1024)",
    )
    p.add_argument("--memory-budget", type=budget_arg, metavar="SIZE", help=MEMORY_BUDGET_HELP)
    p.add_argument(
        "--max-frames", type=_at_least_one, default=256, help="most images in one batch job (default: 256)"
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run batch jobs on a Ray cluster: 'auto' starts or joins one on this machine, else a cluster's "
        "address (ray://host:10001); needs noisebrush[cluster]. Default: on this server's engine",
    )
    p.set_defaults(func=run_serve)

    t = subparsers.add_parser("token", help="print the path of the server's token file (made if absent)")
    t.add_argument(
        "--show",
        "--print",
        action="store_true",
        help="print the token itself instead of the path (to paste into a plugin's Token field)",
    )
    t.set_defaults(func=run_token)

    i = subparsers.add_parser("install-plugin", help="install the Krita or GIMP plugin, or build Krita's zip")
    i.add_argument("host", choices=["krita", "gimp"])
    i.add_argument("--dest", type=Path, help="folder to install into (default: the host's own plugin folder)")
    i.add_argument(
        "--zip",
        type=Path,
        metavar="OUT.zip",
        help="krita: write a zip for Tools > Scripts > Import Python Plugin from File instead",
    )
    i.set_defaults(func=run_install_plugin)


def run_serve(args: argparse.Namespace) -> int:
    from noisebrush.core.server.app import ServerConfig, serve
    from noisebrush.core.server.auth import ensure_token, token_path

    try:
        token = ensure_token()
    except BadInput as exc:
        print(f"noisebrush: error: serve: {exc}", file=sys.stderr)
        return 2
    config = ServerConfig(
        token=token,
        host=args.host,
        port=args.port,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_queued=args.max_queued,
        allow_hosts=list(args.allow_host),
        state_dir=args.state_dir or token_path().parent,
        keep_hours=args.keep_hours,
        keep_mb=args.keep_mb,
        memory_budget=args.memory_budget,
        max_frames=args.max_frames,
        ray=args.ray,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"noisebrush serve: listening on {args.host}, reachable from other machines (token still required)",
            file=sys.stderr,
        )
    print(
        f"NoiseBrush server on http://{args.host}:{args.port}  (token file: {token_path()}, "
        f"job journal: {config.journal_path()})",
        file=sys.stderr,
    )
    try:
        serve(config)
    except BadInput as exc:  # e.g. a state folder it cannot write
        print(f"noisebrush: error: serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def _at_least_one(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return int(text)


def run_token(args: argparse.Namespace) -> int:
    from noisebrush.core.server.auth import ensure_token, token_path

    try:
        token = ensure_token()
    except BadInput as exc:
        print(f"noisebrush: error: token: {exc}", file=sys.stderr)
        return 2
    print(token if args.show else token_path())
    return 0


def run_install_plugin(args: argparse.Namespace) -> int:
    from noisebrush.core.cli.install_plugin import build_krita_zip, install_gimp, install_krita

    try:
        if args.zip is not None:
            if args.host != "krita":
                raise BadInput("--zip is for Krita's importer; GIMP plugins install as a folder")
            print(build_krita_zip(args.zip))
        elif args.host == "krita":
            print(install_krita(args.dest))
        else:
            print(install_gimp(args.dest))
    except (BadInput, OSError) as exc:
        print(f"noisebrush: error: install-plugin: {exc}", file=sys.stderr)
        return 2
    return 0
