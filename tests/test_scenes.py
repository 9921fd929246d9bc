"""The procedural landscapes: reproducible, any size, honestly labelled, and turned into stroke paintings."""

from __future__ import annotations

import time

import numpy as np
import pytest

from noisebrush.core.lab import scenes


def test_same_seed_same_scene_and_different_seeds_differ() -> None:
    a = scenes.render(np.random.default_rng(5), 64)
    b = scenes.render(np.random.default_rng(5), 64)
    c = scenes.render(np.random.default_rng(6), 64)
    assert np.array_equal(a.image, b.image) and a.concepts == b.concepts
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("size", [(32, 32), (48, 80), (256, 256)])
def test_any_size_renders_rgb_uint8(size: tuple[int, int]) -> None:
    s = scenes.render(np.random.default_rng(1), *size)
    assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
    assert s.labels.shape == size


def test_concepts_are_vocabulary_words_with_one_mood_first() -> None:
    for s in scenes.scenes(3, 40, 48):
        assert s.concepts[0] in scenes.MOODS
        assert sum(w in scenes.MOODS for w in s.concepts) == 1
        assert set(s.concepts) <= set(scenes.VOCABULARY)


def test_every_concept_occurs_in_a_small_set() -> None:
    seen = {w for s in scenes.scenes(11, 150, 48) for w in s.concepts}
    assert seen == set(scenes.VOCABULARY)


def test_crop_keeps_only_what_it_shows() -> None:
    for s in scenes.scenes(2, 30, 64):
        top = s.crop(0, 0, 8, 64)  # the top rows: sky, sun or moon, clouds, peaks at most
        assert not {"field", "lake", "rocks"} & set(top.concepts)
        assert top.concepts[0] == s.concepts[0]  # the mood is the whole scene's


def test_scenes_are_varied() -> None:
    images = np.stack([s.image for s in scenes.scenes(4, 20, 32)]).astype(np.float32)
    assert images.std(axis=0).mean() > 20  # pixel values vary a lot across scenes


def test_rendering_is_fast() -> None:
    started = time.perf_counter()
    scenes.scenes(0, 20, 64)
    assert (time.perf_counter() - started) / 20 < 0.1


def test_strokes_are_few_flat_colours_of_the_same_size() -> None:
    image = scenes.render(np.random.default_rng(9), 64).image
    painted = scenes.strokes(image, np.random.default_rng(0))
    assert painted.shape == image.shape and painted.dtype == np.uint8
    assert len(np.unique(painted.reshape(-1, 3), axis=0)) <= 10
    assert np.array_equal(painted, scenes.strokes(image, np.random.default_rng(0)))
    # Coarse layout survives: the mean colour of each quarter stays close.
    q = lambda im: im.reshape(2, 32, 2, 32, 3).mean(axis=(1, 3))  # noqa: E731
    assert np.abs(q(painted.astype(float)) - q(image.astype(float))).max() < 40
