"""``seca serve``: a model that keeps learning, behind HTTP and a web page (docs/serve.md).

    from seca.serve import run_server
    run_server("model.safetensors", port=8000, token="...")   # blocks; Ctrl-C stops it

The app (``create_app``) and the model it serves (``ModelServer``) are importable on their own, e.g. to mount the
API in another ASGI application or to test it with FastAPI's test client. It needs the ``serve`` extra
(``pip install 'seca[serve]'``: FastAPI, uvicorn and python-multipart).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import socket
from pathlib import Path

from ..errors import SecaError

__all__ = ["run_server", "create_app", "ModelServer", "Limits", "check_host", "check_port", "check_token"]

TOKEN_VARIABLE = "SECA_SERVE_TOKEN"


def __getattr__(name: str):
    if name in ("create_app", "ModelServer", "Limits"):
        _require_extra()
        from . import app, jobs, uploads

        return {"create_app": app.create_app, "ModelServer": jobs.ModelServer, "Limits": uploads.Limits}[name]
    raise AttributeError(f"module 'seca.serve' has no attribute '{name}'")


def _require_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise SecaError(
            f"seca serve needs FastAPI, uvicorn and python-multipart ({e.name} is missing): pip install 'seca[serve]'"
        ) from None


class QueryRedaction(logging.Filter):
    """The access log keeps a request's path and never the values of its query string (a token a client put there
    by mistake stays out of the log): ``/learn?token=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config() -> dict:
    """uvicorn's logging, with the access log's lines passed through :class:`QueryRedaction`."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_queries"] = {"()": QueryRedaction}
    config["handlers"]["access"].setdefault("filters", []).append("redact_queries")
    return config


def _redacted(text: str) -> str:
    return re.sub(r"([?&][^=&#\s]*=)[^&#\s]*", r"\1[redacted]", text) if "?" in text else text


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str) -> str:
    """``token`` if a client can send it: it travels in the header ``Authorization: Bearer TOKEN``, so it must be
    printable ASCII without spaces; else a SecaError saying so (at start, before anyone is refused for it)."""
    if not token or any(not ("!" <= c <= "~") for c in token):
        raise SecaError(
            "the token must be printable ASCII without spaces (it is sent in the HTTP header 'Authorization: Bearer "
            "TOKEN'): letters, digits and punctuation; choose another (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe())')"
        )
    return token


def check_port(port: int) -> int:
    """``port`` if it is one a server can listen on, 1 to 65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SecaError(f"--port must be a port number from 1 to 65535, got {port!r}")
    return port


def check_host(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to listen beyond this machine without a token, unless told to (``--insecure``)."""
    if token is not None:
        check_token(token)
    if not is_loopback(host) and token is None and not insecure:
        raise SecaError(
            f"--host {host} would let anyone who can reach this machine change the model: give --token "
            f"(or ${TOKEN_VARIABLE}), or pass --insecure to serve without one"
        )


def check_free(host: str, port: int) -> None:
    """Refuse a port another program listens on (or an address this machine does not have)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is no bar
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SecaError(
                    f"port {port} on {host} is in use (another seca serve?): choose another --port"
                ) from None
            raise SecaError(f"cannot listen on {host}:{port}: {e.strerror or e}; check --host and --port") from None


def run_server(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    insecure: bool = False,
    limits=None,
    device: str = "auto",
) -> None:
    """Serve ``model`` until interrupted. ``token`` (default: ``$SECA_SERVE_TOKEN``) guards every request that
    changes the model; without one, a ``host`` other than loopback is refused unless ``insecure``."""
    _require_extra()
    import uvicorn

    from .app import create_app
    from .jobs import ModelServer
    from .uploads import Limits

    token = token or os.environ.get(TOKEN_VARIABLE) or None
    check_host(host, token, insecure)
    check_port(port)
    path = Path(model).expanduser()
    if not path.is_file():
        raise SecaError(f"model '{model}' not found; make one with `seca new` or `seca run`")
    check_free(host, port)  # before the model loads: a port in use is said in one line, at once
    server = ModelServer(path, device=device)
    app = create_app(server, token=token, limits=limits or Limits())
    where = f"[{host}]" if ":" in host else host
    print(
        f"serving {path} ({len(server.model.classes)} classes, {len(server.model.learner.tasks)} tasks) on "
        f"http://{where}:{port}/ {'(a token guards learning)' if token else ''}".rstrip(),
        flush=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", log_config=log_config())
    finally:
        server.stop()  # a running job is cancelled: the model file stays as it was
