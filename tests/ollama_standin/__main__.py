"""``python -m tests.ollama_standin serve`` (or ``tests/ollama_standin/bin/ollama serve``).

Commands (a tiny subset of the real ``ollama`` CLI):

* ``serve``: run the stand-in on ``$OLLAMA_HOST`` (default ``127.0.0.1:11434``);
  config from env (see config.py);
* ``--version`` / ``-v`` / ``version``: print ``ollama version is X``;
* ``list`` / ``ls``, ``pull NAME``, ``ps``: talk to a running server at ``$OLLAMA_HOST`` over HTTP.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from .config import StandinConfig, parse_host


def _base() -> str:
    host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _call(method: str, path: str, body: dict | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(_base() + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def serve() -> int:
    import logging

    import uvicorn

    from .app import create_app

    cfg = StandinConfig.from_env()
    host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    level = os.environ.get("STANDIN_LOG_LEVEL", "warning")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(cfg)
    print(f"ollama stand-in listening on {host}:{port} (gguf {app.path})", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=level,
        access_log=level in ("debug", "info"),
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else "serve"
    if cmd in ("--version", "-v", "version"):
        print(f"ollama version is {StandinConfig.from_env().version}")
        return 0
    if cmd == "serve":
        return serve()
    try:
        if cmd in ("list", "ls"):
            for m in json.loads(_call("GET", "/api/tags"))["models"]:
                print(m["name"])
            return 0
        if cmd == "ps":
            for m in json.loads(_call("GET", "/api/ps"))["models"]:
                print(m["name"])
            return 0
        if cmd == "pull" and len(args) > 1:
            out = _call("POST", "/api/pull", {"model": args[1], "stream": False})
            print(json.loads(out).get("status", ""))
            return 0
    except urllib.error.HTTPError as e:
        print(f"Error: {json.loads(e.read() or b'{}').get('error', e.reason)}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Error: could not connect to ollama server: {e}", file=sys.stderr)
        return 1
    print(
        f"Error: unknown command {cmd!r} (stand-in supports serve, list, ps, pull, --version)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
