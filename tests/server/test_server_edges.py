"""The server's front door over a real socket: the token before the body, no input of any kind answered
with a 5xx, every number bounded at submit with the bound in the message, short error excerpts, and a
token file that simultaneous starts never see half-written."""

from __future__ import annotations

import base64
import json
import multiprocessing
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nb_live import TOKEN, FakeEngine, live_server, png_b64

from noisebrush.core.engine.images import encode_png
from noisebrush.core.engine.requests import MAX_CONTEXT, MAX_FEATHER, MAX_PROMPT_CHARS
from noisebrush.core.errors import BadInput
from noisebrush.core.server import wire
from noisebrush.core.server.auth import ensure_token

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GUIDE = png_b64(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
FOLDER_STEPS = 50  # the schedule of the model folder made below


def raw_http(
    url: str, head: str, body: bytes = b"", timeout: float = 20.0, encoding: str = "utf-8"
) -> tuple[int, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body` as they are; return the
    status and body of the answer. Raises socket.timeout if the server waits for more than was sent."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode(encoding) + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        headers, _, rest = answer.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            None,
        )
        while length is not None and len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(headers.split(b" ")[1]), rest


class ListedEngine:
    """FakeEngine's work, but not a FakeEngine: the server then lists the real model folders."""

    def __init__(self) -> None:
        self.fake = FakeEngine()

    def sdedit(self, req: Any, callback: Callable | None = None) -> list[np.ndarray]:
        return self.fake.sdedit(req, callback)

    def ledits(self, req: Any, callback: Callable | None = None) -> np.ndarray:
        return self.fake.ledits(req, callback)


@pytest.fixture(scope="module")
def models_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user models folder holding one diffusers-shaped folder whose schedule has FOLDER_STEPS timesteps."""
    root = tmp_path_factory.mktemp("models")
    (root / "tiny" / "scheduler").mkdir(parents=True)
    (root / "tiny" / "model_index.json").write_text(json.dumps({"scheduler": ["diffusers", "DDIMScheduler"]}))
    (root / "tiny" / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"num_train_timesteps": FOLDER_STEPS})
    )
    return root


@pytest.fixture(scope="module")
def listed_server(models_folder: Path) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOISEBRUSH_MODELS", str(models_folder))
        with live_server(ListedEngine(), max_body_bytes=3_000_000, max_pixels=64 * 64) as (url, _app):
            yield url


# -- the token before the body --------------------------------------------------------------------------
def test_body_without_a_token_is_refused_before_it_is_read(server: str) -> None:
    """The server answers 401 having received 100 of the 1.5 MB it was promised: it never waits for the rest."""
    for auth in ("", "Authorization: Bearer wrong-token-0123456789\r\n"):
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
            "Content-Length: 1500000"
        )
        status, body = raw_http(server, head, b"{" * 100)
        assert status == 401 and "token" in json.loads(body)["detail"]


def test_malformed_json_without_a_token_is_401_not_422(server: str) -> None:
    for body in (b"not json", b"{", b'{"kind": "sdedit", "guide": 1}'):
        r = httpx.post(f"{server}/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 401, (body, r.status_code, r.text)
    assert httpx.get(f"{server}/v1/health").status_code == 200  # still public


# -- no input gives a 5xx ---------------------------------------------------------------------------------
# Characters Python calls digits (or numbers) that int() may refuse: Latin-1's few (which a header read as
# Latin-1 brings through whole) drawn as often as all the others.
DIGITS = (
    st.text(st.sampled_from("0123456789¹²³¼½¾"), min_size=1, max_size=4)
    | st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=4)
).filter(lambda s: not s.isascii())


@given(digits=DIGITS)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_unicode_digits_in_host_are_403_on_every_route(server: str, digits: str) -> None:
    """'²'.isdigit() is True but int('²') fails: this once answered 500, even on /v1/health. Headers arrive
    as bytes read as Latin-1, so each is sent both in Latin-1 (where it fits) and in UTF-8."""
    for encoding in _encodings(digits):
        for method, path in (("GET", "/v1/health"), ("GET", "/v1/models"), ("POST", "/v1/jobs")):
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{digits}\r\nContent-Length: 0\r\nConnection: close"
            status, _ = raw_http(server, head, encoding=encoding)
            assert status == 403, (path, digits, encoding, status)
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {digits}\r\nConnection: close"
            assert raw_http(server, head, encoding=encoding)[0] == 400, (path, digits, encoding)


def _encodings(text: str) -> list[str]:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return ["utf-8"]
    return ["latin-1", "utf-8"]


def test_unicode_digits_in_last_event_id_are_ignored(server: str, client: httpx.Client) -> None:
    job = client.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE}).json()["id"]
    for digits in ("²", "1²", "¹", "¾", "٣", "Ⅻ"):
        for encoding in _encodings(digits):
            head = (
                f"GET /v1/jobs/{job}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Last-Event-ID: {digits}\r\nConnection: close"
            )
            status, _ = raw_http(server, head, encoding=encoding)
            assert status == 200, (digits, encoding)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_in_any_number_are_4xx_with_json(client: httpx.Client, literal: str) -> None:
    """NaN in a field that fails validation once made the 422 handler fail to encode its own answer (500)."""
    sdedit = ["seed", "steps", "strength", "variations", "repeats", "feather", "context", "guidance"]
    ledits = [
        "steps",
        "skip",
        "source_guidance",
        "target_guidance",
        "momentum",
        "momentum_beta",
        "seed",
        "work_size",
    ]
    bodies = [f'{{"kind": "sdedit", "guide": "{GUIDE}", "{f}": {literal}}}' for f in sdedit]
    bodies += [f'{{"kind": "ledits", "image": "{GUIDE}", "{f}": {literal}}}' for f in ledits]
    bodies += [
        f'{{"kind": "ledits", "image": "{GUIDE}", "concepts": [{{"text": "cat", "{f}": {literal}}}]}}'
        for f in ("scale", "threshold", "warmup")
    ]
    for body in bodies:
        r = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (body[-60:], r.status_code, r.text[:200])
        assert json.loads(r.text)["detail"]  # strict JSON: no bare NaN in the answer


# -- every number bounded at submit, short excerpts -------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "bound"),
    [
        ({"feather": MAX_FEATHER + 1}, str(MAX_FEATHER)),
        ({"feather": 10**12}, str(MAX_FEATHER)),
        ({"context": MAX_CONTEXT + 1}, str(MAX_CONTEXT)),
        ({"steps": 10001}, "10000"),
        ({"variations": 65}, "64"),
        ({"repeats": 101}, "100"),
        ({"guidance": 101}, "100"),
        ({"prompt": "cat " * MAX_PROMPT_CHARS}, str(MAX_PROMPT_CHARS)),
        ({"negative_prompt": "x" * (MAX_PROMPT_CHARS + 1)}, str(MAX_PROMPT_CHARS)),
        ({"device": "cuda:zero"}, "cuda:N"),
        ({"model": "m" * 5000}, "1000"),
    ],
)
def test_sdedit_numbers_are_bounded_at_submit(client: httpx.Client, fields: dict, bound: str) -> None:
    r = client.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, **fields})
    assert r.status_code == 400, (fields, r.status_code)
    assert bound in r.json()["detail"] and len(r.text) < 600, r.text[:600]


@pytest.mark.parametrize(
    ("fields", "bound"),
    [
        ({"concepts": [{"text": "cat"}] * 17}, "16"),
        ({"concepts": [{"text": "cat", "scale": 101}]}, "100"),
        ({"concepts": [{"text": "cat", "warmup": 10**9}]}, "10000"),
        ({"concepts": [{"text": "c" * (MAX_PROMPT_CHARS + 1)}]}, str(MAX_PROMPT_CHARS)),
        ({"target_prompt": "c" * 10**6}, str(MAX_PROMPT_CHARS)),
        ({"feather": MAX_FEATHER + 1}, str(MAX_FEATHER)),
        ({"steps": 1001}, "1000"),
    ],
)
def test_ledits_numbers_are_bounded_at_submit(client: httpx.Client, fields: dict, bound: str) -> None:
    r = client.post(
        "/v1/jobs", json={"kind": "ledits", "image": GUIDE, "concepts": [{"text": "cat"}], **fields}
    )
    assert r.status_code == 400, (fields, r.status_code)
    assert bound in r.json()["detail"] and len(r.text) < 600, r.text[:600]


def test_validation_errors_quote_short_excerpts(client: httpx.Client) -> None:
    """A megabyte in a field name, a tag or a wrongly typed value comes back as a short message."""
    huge = "z" * 1_000_000
    for body in (
        {"kind": huge, "guide": GUIDE},
        {"kind": "sdedit", "guide": GUIDE, huge: 1},
        {"kind": "sdedit", "guide": GUIDE, "seed": huge},
        {"kind": "sdedit", "guide": GUIDE, "threshold_over": huge},
        {"kind": "ledits", "image": GUIDE, "threshold_over": huge},
    ):
        r = client.post("/v1/jobs", json=body)
        assert 400 <= r.status_code < 500 and len(r.content) < 2000, (r.status_code, len(r.content))
    r = client.get(f"/v1/jobs/{'j' * 10_000}")
    assert r.status_code == 404 and len(r.content) < 500, len(r.content)


def test_steps_are_bounded_by_the_models_schedule(listed_server: str) -> None:
    """Steps past the model's schedule are refused at submit, naming the schedule's length."""
    c = httpx.Client(base_url=listed_server, headers=AUTH, timeout=30)
    listed = {m["name"]: m for m in c.get("/v1/models").json()}
    assert listed["tiny"]["schedule_steps"] == FOLDER_STEPS
    r = c.post(
        "/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, "model": "tiny", "steps": FOLDER_STEPS + 1}
    )
    assert r.status_code == 400 and f"at most {FOLDER_STEPS}" in r.json()["detail"]
    r = c.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, "model": "tiny", "steps": FOLDER_STEPS})
    assert r.status_code == 201, r.text
    if "default" in listed:  # the bundled prior, when installed: 1000 timesteps like Stable Diffusion
        most = listed["default"]["schedule_steps"]
        r = c.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, "steps": most + 1})
        assert r.status_code == 400 and f"at most {most}" in r.json()["detail"]


def test_model_paths_outside_the_model_folders_are_refused_alike(
    listed_server: str, models_folder: Path, tmp_path: Path
) -> None:
    """Inside the model folders a path is accepted; outside, the answer is the same whether it exists or not."""
    c = httpx.Client(base_url=listed_server, headers=AUTH, timeout=30)
    r = c.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, "model": str(models_folder / "tiny")})
    assert r.status_code == 201, r.text
    (tmp_path / "model_index.json").write_text("{}")  # a real model-looking folder, but not a model folder
    outside = [
        str(tmp_path),
        str(tmp_path / "missing"),
        "/etc",
        "/no/such/place",
        "../../../../etc",
        "tiny/../../../etc",
        f"{models_folder}/../{tmp_path.name}",
        "~",
    ]
    details = set()
    for name in outside:
        r = c.post("/v1/jobs", json={"kind": "sdedit", "guide": GUIDE, "model": name})
        assert r.status_code == 400, (name, r.status_code)
        details.add(r.json()["detail"].replace(repr(name), "NAME"))
    assert len(details) == 1, details
    detail = details.pop().lower()
    assert not any(w in detail for w in ("exist", "no such", "not found", "is a folder", "is a file")), detail


def test_unknown_words_are_quoted_in_part() -> None:
    """The error of a 1 MB prompt of unknown words is short: it is returned with every status poll."""
    from noisebrush.core.engine.priors import Prior

    prior = SimpleNamespace(vocabulary=["cat", "dog"])
    with pytest.raises(BadInput) as err:
        Prior.check_words(prior, "zebra " * 200_000)  # type: ignore[arg-type]
    assert len(str(err.value)) < 500 and "zebra" in str(err.value) and "cat, dog" in str(err.value)


# -- the token file ---------------------------------------------------------------------------------------
def _start(path: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        out.put(ensure_token(Path(path)))
    except Exception as exc:  # what a server starting at that moment would have died of
        out.put(f"error: {exc}")


def test_simultaneous_starts_all_read_the_same_token(tmp_path: Path) -> None:
    """30 rounds of 6 processes creating the token file together: every one reads the same full token."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(30):
        path = tmp_path / f"round{round_}" / "token"
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_start, args=(str(path), barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        tokens = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
        assert len(set(tokens)) == 1 and len(tokens[0]) >= 32, (round_, tokens)
        assert (path.stat().st_mode & 0o777) == 0o600
        assert [f.name for f in path.parent.iterdir()] == ["token"]  # no temporary file left behind


# -- the bounds as a property -----------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-2, MAX_CONTEXT + 2),
)
SDEDIT_BOUNDS: dict[str, tuple[float, float]] = {
    "strength": (0, 1),
    "steps": (1, 10000),
    "repeats": (1, 100),
    "seed": (0, 2**63 - 1),
    "variations": (1, 64),
    "guidance": (0, 100),
    "feather": (0, MAX_FEATHER),
    "context": (0, MAX_CONTEXT),
}


@given(values=st.fixed_dictionaries({}, optional={name: NUMBERS for name in SDEDIT_BOUNDS}))
@settings(max_examples=300, deadline=None, database=None)
def test_a_request_passes_only_within_its_bounds(values: dict[str, float]) -> None:
    """Whatever numbers a request holds, it is refused with a message naming a field and its bound, or every
    number lies within the bound the messages state."""
    from noisebrush.core.engine.requests import SDEditRequest

    req = SDEditRequest(guide=np.zeros((8, 8, 3), np.uint8), **values)  # type: ignore[arg-type]
    try:
        req.validate()
    except BadInput as exc:
        named = [n for n in values if n in str(exc)]
        assert named, (values, str(exc))
        lo, hi = SDEDIT_BOUNDS[named[0]]
        assert f"{hi:g}" in str(exc) or "2^63" in str(exc), str(exc)
        return
    for name, value in values.items():
        lo, hi = SDEDIT_BOUNDS[name]
        assert lo <= value <= hi, (name, value)


def _damaged(png: bytes) -> bytes:
    """`png` with one byte of its image data flipped: the chunk's CRC no longer matches."""
    at = png.index(b"IDAT") + 8
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]


def test_submit_checks_a_guide_from_its_header_without_decoding_it() -> None:
    """A waiting job costs no decoded pixels: the check at submit reads the PNG's header and checksums
    (a 4096x4096 decode there took seconds and hundreds of MB), and still refuses a damaged file."""
    guide = np.random.default_rng(1).integers(0, 256, (40, 56, 4), dtype=np.uint8)
    mask = np.zeros((40, 56), np.uint8)
    mask[10:20, 5:30] = 255
    body = wire.SDEditJob(kind="sdedit", guide=encode_png(guide), mask=encode_png(mask))
    _, checked = wire.to_request(body, 10**6, checks_only=True)
    _, full = wire.to_request(body, 10**6)
    assert checked.guide.shape == full.guide.shape == (40, 56, 4) and checked.guide.dtype == np.uint8
    assert checked.guide.strides == (0, 0, 0)  # no memory behind it
    assert np.array_equal(checked.mask, full.mask)  # the selection decides the work size: decoded
    bad = base64.b64encode(_damaged(base64.b64decode(encode_png(guide)))).decode()
    with pytest.raises(BadInput, match="damaged PNG"):
        wire.to_request(body.model_copy(update={"guide": bad}), 10**6, checks_only=True)
