"""The NoiseBrush server's HTTP client in plain Python (urllib), for host plugins.

Shared by the Krita and GIMP plugins: it lives once in plugin/shared, and `noisebrush install-plugin`
copies it into each plugin so the installed plugin stands alone. Knows the routes, the bearer token,
server-sent events, and how to start a local server.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

DEFAULT_URL = "http://127.0.0.1:7865"
FINISHED = ("succeeded", "failed", "cancelled")


class ServerError(Exception):
    """The server answered with an error, or could not be reached; `str()` is meant for the user."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def token_path() -> str:
    """Where `noisebrush serve` keeps its token (same rule as `noisebrush token`)."""
    override = os.environ.get("NOISEBRUSH_TOKEN_FILE")
    if override:
        return os.path.expanduser(override)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "noisebrush", "token")


def read_token(path: str | None = None) -> str:
    path = path or token_path()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise ServerError(
            f"cannot read the server token at {path}: {exc.strerror}; paste the token into the Token field "
            "(`noisebrush token --print` on the server's machine shows it)"
        ) from None


class Client:
    """One server: `url` like http://127.0.0.1:7865, `token` from its token file."""

    def __init__(self, url: str = DEFAULT_URL, token: str = "", timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- routes -----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health", auth=False)

    def models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/models")  # type: ignore[return-value]

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/jobs", body)

    def job(self, job_id: str, images: bool = True) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}" + ("" if images else "?images=false"))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")

    def events(self, job_id: str, since: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs from the job's server-sent events, until its final status."""
        req = self._request("GET", f"/v1/jobs/{job_id}/events?since={since}")
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except OSError as exc:
            raise _unreachable(self.url, exc) from None
        with resp:
            event, data = "message", []
            try:
                for raw in resp:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if not line:
                        if data:
                            yield event, json.loads("\n".join(data))
                        event, data = "message", []
                    elif line.startswith(":"):
                        continue
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # a stream cut mid-event (a reset, a timeout, a proxy): `wait` goes on by polling
                raise ServerError(f"the event stream from {self.url} broke off: {exc}") from None

    def wait(
        self,
        job_id: str,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        poll: float = 0.2,
    ) -> dict[str, Any]:
        """Follow a job to its end and return its final state (with images). Streams events when it
        can, polls when it cannot; asks the server to cancel once `should_cancel()` turns true."""
        cancel_sent = False
        try:
            for event, data in self.events(job_id):
                if on_event is not None:
                    on_event(event, data)
                if should_cancel is not None and should_cancel() and not cancel_sent:
                    self.cancel(job_id)
                    cancel_sent = True
                if event == "status" and data.get("status") in FINISHED:
                    break
        except ServerError as exc:
            if exc.status in (401, 404):
                raise
        while True:
            state = self.job(job_id)
            if state["status"] in FINISHED:
                return state
            if should_cancel is not None and should_cancel() and not cancel_sent:
                self.cancel(job_id)
                cancel_sent = True
            if on_event is not None:
                on_event("progress", {"step": state["step"], "total": state["total"]})
            time.sleep(poll)

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode("utf-8")
        if not self.url.startswith(("http://", "https://")):
            raise ServerError(f"the server URL {self.url!r} is not valid: use one like {DEFAULT_URL}")
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        return req

    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        req = self._request(method, path, body, auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except OSError as exc:
            raise _unreachable(self.url, exc) from None
        except (http.client.HTTPException, ValueError):
            raise ServerError(f"{self.url} did not answer as a NoiseBrush server does; is the URL right?") from None


def _unreachable(url: str, exc: OSError) -> ServerError:
    return ServerError(
        f"cannot reach the NoiseBrush server at {url}: {getattr(exc, 'reason', exc)}; is `noisebrush serve` "
        "running there, and is the Server URL right?"
    )


def _error(exc: urllib.error.HTTPError) -> ServerError:
    try:
        detail = json.loads(exc.read().decode("utf-8")).get("detail")
    except Exception:
        detail = None
    if isinstance(detail, list):  # a validation error: [{"loc": [...], "msg": ...}, ...]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
        )
    if exc.code == 401:  # the server is there: the token is what is wrong
        return ServerError(
            f"server said 401: the token is wrong ({detail or exc.reason}); paste the one "
            "`noisebrush token --print` shows on the server's machine",
            401,
        )
    return ServerError(f"server said {exc.code}: {detail or exc.reason}", exc.code)


def start_local_server(
    url: str = DEFAULT_URL, command: str = "", timeout: float = 60.0
) -> subprocess.Popen | None:
    """Start `noisebrush serve` on the port of `url` unless a server already answers there.

    Returns the process (None if one was already running). `command` is the noisebrush executable;
    empty means the one on PATH.
    """
    client = Client(url)
    try:
        client.health()
        return None
    except ServerError:
        pass
    exe = command or shutil.which("noisebrush")
    if not exe:
        raise ServerError("the `noisebrush` command was not found; set its path in the NoiseBrush settings")
    port = url.rsplit(":", 1)[-1].split("/")[0]
    log_path = os.path.join(tempfile.gettempdir(), "noisebrush-serve.log")
    with open(log_path, "ab") as log:  # a file, not a pipe: nobody drains a pipe for the server's lifetime
        proc = subprocess.Popen([exe, "serve", "--port", port], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, "rb") as f:
                err = f.read()[-500:].decode(errors="replace")
            raise ServerError(f"noisebrush serve exited with code {proc.returncode} (log: {log_path}): {err}")
        try:
            client.health()
            return proc
        except ServerError:
            time.sleep(0.25)
    proc.terminate()
    raise ServerError(f"noisebrush serve did not answer at {url} within {timeout:.0f} s")
