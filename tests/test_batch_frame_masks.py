"""Batches whose frames each bring their own mask (the Studio's layers of different bounds), the per-step
hook the Studio's progress hangs on, and a shared control image checked against each frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.batch.inputs import Masks, frames_of
from noisebrush.core.batch.runner import Batch, in_process, run_batch
from noisebrush.core.engine.progress import Progress
from noisebrush.core.errors import BadInput

FIELDS = {"model": "default", "steps": 4}


class Engine:
    """Inverts the guide in one step, keeping each request it is given."""

    def __init__(self) -> None:
        self.requests: list[object] = []

    def sdedit(self, req, callback=None, should_stop=None) -> list[np.ndarray]:
        req.validate()
        self.requests.append(req)
        if callback is not None:
            callback(Progress(1, 1))
        return [255 - req.guide]


def _image(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


size = st.tuples(st.integers(8, 24), st.integers(8, 24))


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(size, min_size=1, max_size=5), masked=st.lists(st.booleans(), min_size=5, max_size=5))
def test_each_frame_gets_its_own_mask_of_its_own_size(sizes, masked):
    images = [(f"layer {i}", _image(i, h, w)) for i, (h, w) in enumerate(sizes)]
    masks = []
    for i, (h, w) in enumerate(sizes):
        m = None
        if masked[i]:
            m = np.zeros((h, w), np.float32)
            m[: h // 2 + 1, i % w :] = 1.0
        masks.append(m)
    engine = Engine()
    seen = []
    batch = Batch(frames_of(images), None, FIELDS, masks=Masks(None, images=masks))
    summary = run_batch(batch, in_process(engine), seen.append)
    assert summary.failed == [] and [r.frame.index for r in seen] == list(range(len(sizes)))
    for req, mask, (_, image) in zip(engine.requests, masks, images, strict=True):
        assert req.mask is mask  # that frame's own, not another's
        np.testing.assert_array_equal(req.guide, image)


def test_a_frame_without_a_mask_in_the_list_fails_alone():
    images = [(n, _image(i, 8, 8)) for i, n in enumerate("abc")]
    batch = Batch(frames_of(images), None, FIELDS, masks=Masks(None, images=[None, np.ones((8, 8))]))
    summary = run_batch(batch, in_process(Engine()))
    assert summary.done == ["a", "b"]
    assert summary.failed == [("c", "no mask for frame c: 2 masks were given, one per frame in input order")]


def test_a_per_frame_mask_of_another_size_fails_that_frame_with_both_sizes():
    images = [("a", _image(0, 8, 8)), ("b", _image(1, 12, 10))]
    batch = Batch(frames_of(images), None, FIELDS, masks=Masks(None, images=[np.ones((8, 8))] * 2))
    summary = run_batch(batch, in_process(Engine()))
    assert summary.done == ["a"]
    assert "the mask is 8x8, frame b is 10x12" in summary.failed[0][1]


def test_one_mask_for_all_and_one_per_frame_cannot_both_be_given():
    with pytest.raises(BadInput, match="not both"):
        Masks(None, image=np.ones((8, 8)), images=[np.ones((8, 8))])


def test_per_frame_masks_resume_by_their_own_hash(tmp_path):
    images = [(n, _image(i, 8, 8)) for i, n in enumerate("abc")]
    masks = [np.zeros((8, 8), np.float32) for _ in images]
    for m in masks:
        m[:4] = 1.0

    def run(masks: list[np.ndarray]):
        batch = Batch(frames_of(images), tmp_path / "out", FIELDS, masks=Masks(None, images=masks))
        return run_batch(batch, in_process(Engine()))

    assert run(masks).done == ["a", "b", "c"]
    assert run(masks).skipped == ["a", "b", "c"]
    changed = [m.copy() for m in masks]
    changed[1][6:] = 1.0
    again = run(changed)
    assert again.done == ["b"] and again.skipped == ["a", "c"]  # only the frame whose mask changed


def test_each_step_reaches_on_step_with_its_frame():
    images = [(n, _image(i, 8, 8)) for i, n in enumerate("abc")]
    heard: list[tuple[str, int]] = []
    executor = in_process(Engine(), on_step=lambda frame, p: heard.append((frame.name, p.step)))
    run_batch(Batch(frames_of(images), None, FIELDS), executor)
    assert heard == [("a", 1), ("b", 1), ("c", 1)]


def test_a_control_image_shared_by_the_batch_is_checked_against_each_frame():
    control = _image(9, 16, 12)
    images = [("fits", _image(0, 16, 12)), ("other size", _image(1, 8, 8))]
    fields = {**FIELDS, "controlnet": "some/controlnet", "control": control}
    summary = run_batch(Batch(frames_of(images), None, fields), in_process(Engine()))
    assert summary.done == ["fits"]
    assert "control image is 12x16 but the guide is 8x8" in summary.failed[0][1]
