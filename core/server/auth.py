"""The server's shared secret: a token file readable only by its owner, and the checks around it."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from noisebrush.core.errors import BadInput

TOKEN_ENV = "NOISEBRUSH_TOKEN_FILE"


def token_path() -> Path:
    """$NOISEBRUSH_TOKEN_FILE, else $XDG_CONFIG_HOME/noisebrush/token, else ~/.config/noisebrush/token."""
    override = os.environ.get(TOKEN_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "noisebrush" / "token"


def ensure_token(path: Path | None = None) -> str:
    """Read the token, creating the file (mode 0600, parent 0700) with a fresh one if it is absent.

    The token is written whole to a temporary file in the same folder and then linked into place, so a
    process starting at the same moment sees either no file or a complete one, never an empty one.
    """
    path = path or token_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _publish_token(path, secrets.token_urlsafe(32) + "\n")
    return read_token(path)


def _publish_token(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process published first: theirs is kept and read
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: a rename is atomic too, but last writer wins
            if not path.exists():
                os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_token(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadInput(
            f"token file {path} is readable by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise BadInput(f"token file {path} holds fewer than 16 characters; delete it to make a new one")
    return token


def bearer_ok(header: str | None, token: str) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names (without port) a request may name: the loopback names, the bound address, `extra`."""
    names = {"127.0.0.1", "localhost", "::1", "[::1]"}
    if bind_host not in ("", "0.0.0.0", "::"):
        names.add(bind_host.lower())
    names.update(h.lower() for h in extra)
    return names


def split_host(host: str) -> tuple[str, int | None]:
    """'name:port' / '[v6]:port' / 'name' -> (name, port)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:
        name, port = host, ""
    if port:
        if not ascii_number(port):
            return name, -1
        return name, int(port)
    return name, None


def ascii_number(text: str) -> bool:
    """Only the digits 0-9: str.isdigit() also takes '²', which int() then refuses."""
    return text.isascii() and text.isdigit()


def host_ok(host: str | None, names: set[str], port: int, any_ip: bool = False) -> bool:
    """Is `host` (the Host header) this server? Refuses DNS-rebinding names like evil.example:PORT.

    With `any_ip` (bound to 0.0.0.0 / ::) a literal IP address is accepted too: a rebinding attack
    always arrives under a DNS name, never under an IP literal.
    """
    if not host:
        return False
    name, p = split_host(host)
    if p is not None and p != port:
        return False
    if name in names:
        return True
    if any_ip:
        try:
            ipaddress.ip_address(name.strip("[]"))
            return True
        except ValueError:
            return False
    return False
