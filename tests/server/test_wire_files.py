"""A client names LoRA and ControlNet files as it names models: inside the model folders only."""

from __future__ import annotations

import numpy as np
import pytest
from nb_live import png_b64

from noisebrush.core.errors import BadInput
from noisebrush.core.server import wire

GUIDE = png_b64(np.zeros((16, 16, 3), np.uint8))


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    (models / "loras" / "ink.safetensors").write_bytes(b"x")
    (models / "cn").mkdir()
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    return models


def _request(**fields):
    return wire.to_request(wire.SDEditJob(kind="sdedit", guide=GUIDE, **fields), 10**7)[1]


def test_a_lora_inside_the_model_folders_is_resolved_to_its_file(folder):
    req = _request(loras=[{"path": "loras/ink.safetensors", "weight": 0.5}], controlnet="cn")
    assert [(p, w) for p, w in req.loras] == [(str(folder / "loras" / "ink.safetensors"), 0.5)]
    assert req.controlnet == str(folder / "cn")


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../../etc/passwd", "loras/../../secret.safetensors", "nope"]
)
def test_a_lora_or_controlnet_outside_the_model_folders_is_refused(folder, path):
    (folder.parent / "secret.safetensors").write_bytes(b"x")
    with pytest.raises(BadInput, match="is not a file inside the model folders"):
        _request(loras=[{"path": path, "weight": 1.0}])
    with pytest.raises(BadInput, match="is not inside the model folders"):
        _request(controlnet=path)


def test_a_control_image_travels_as_png_like_the_mask(folder):
    control = np.full((16, 16, 3), 200, np.uint8)
    req = _request(controlnet="cn", control=png_b64(control))
    assert req.control is not None and (req.control[..., :3] == 200).all()


def test_a_held_job_keeps_its_control_image_and_resolved_files(folder):
    control = np.full((16, 16, 3), 90, np.uint8)
    body = wire.SDEditJob(
        kind="sdedit",
        guide=GUIDE,
        controlnet="cn",
        control=png_b64(control),
        loras=[{"path": "loras/ink.safetensors", "weight": 1.0}],
    )
    req = wire.hold(body, 10**7).decode()
    assert (req.control[..., :3] == 90).all() and req.controlnet == str(folder / "cn")
    assert req.loras[0].path == str(folder / "loras" / "ink.safetensors")
