"""`noisebrush token`, `serve` options and `install-plugin`, through cli_serve's parsers."""

from __future__ import annotations

import argparse
import os
import stat
import zipfile
from pathlib import Path

import pytest

from noisebrush.core.cli import serve as cli_serve
from noisebrush.core.errors import BadInput
from noisebrush.core.server import app as server
from noisebrush.core.server.auth import bearer_ok, ensure_token, host_ok, token_path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_serve.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_token_file_is_private_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cfg" / "token"
    monkeypatch.setenv("NOISEBRUSH_TOKEN_FILE", str(path))
    args = parse("token")
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = ensure_token()
    assert first == ensure_token() and len(first) >= 32
    os.chmod(path, 0o644)
    with pytest.raises(BadInput, match="chmod 600"):
        ensure_token()


def test_token_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOISEBRUSH_TOKEN_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert token_path() == tmp_path / "noisebrush" / "token"


def test_serve_defaults_to_loopback() -> None:
    args = parse("serve")
    assert args.host == "127.0.0.1" and args.port == server.DEFAULT_PORT == cli_serve.DEFAULT_PORT
    assert args.func is cli_serve.run_serve


def test_bearer_and_host_checks() -> None:
    assert bearer_ok("Bearer abc", "abc") and bearer_ok("bearer abc", "abc")
    assert not bearer_ok("Bearer abd", "abc") and not bearer_ok(None, "abc") and not bearer_ok("abc", "abc")
    names = {"127.0.0.1", "localhost", "::1", "[::1]"}
    assert (
        host_ok("127.0.0.1:80", names, 80)
        and host_ok("[::1]:80", names, 80)
        and host_ok("localhost", names, 80)
    )
    assert not host_ok("evil.example:80", names, 80) and not host_ok("localhost:81", names, 80)
    assert host_ok("192.168.1.5:80", names, 80, any_ip=True) and not host_ok(
        "evil.example:80", names, 80, any_ip=True
    )


def test_install_plugin_krita_folder_and_zip(tmp_path: Path) -> None:
    args = parse("install-plugin", "krita", "--dest", str(tmp_path / "pykrita"))
    assert args.func(args) == 0
    assert (tmp_path / "pykrita" / "noisebrush_krita.desktop").is_file()
    assert (tmp_path / "pykrita" / "noisebrush_krita" / "__init__.py").is_file()
    args = parse("install-plugin", "krita", "--zip", str(tmp_path / "nb.zip"))
    assert args.func(args) == 0
    names = zipfile.ZipFile(tmp_path / "nb.zip").namelist()
    assert "noisebrush_krita.desktop" in names and "noisebrush_krita/__init__.py" in names
    assert not any("__pycache__" in n for n in names)


def test_install_plugin_gimp(tmp_path: Path) -> None:
    args = parse("install-plugin", "gimp", "--dest", str(tmp_path))
    assert args.func(args) == 0
    entry = tmp_path / "noisebrush-gimp" / "noisebrush-gimp.py"
    assert entry.is_file() and os.access(entry, os.X_OK)
