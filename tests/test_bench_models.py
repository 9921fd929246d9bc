"""`noisebrush bench` cases of docs/MODELS.md: listed, and the LCM case gives a well-formed row."""

from __future__ import annotations

import torch

from noisebrush.bench.command import all_cases
from noisebrush.bench.harness import Options


def test_model_cases_are_listed():
    assert {"taesd-preview", "lcm-edit"} <= set(all_cases())


def test_lcm_case_gives_a_well_formed_row(tmp_path, sd_model):
    (tmp_path / "sd-tiny").symlink_to(sd_model)  # the case's stand-in, already built
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (row,) = all_cases()["lcm-edit"](Options(quick=True, device="cpu", pairs=1, workdir=tmp_path))
    finally:
        torch.set_num_threads(threads)
    assert row.unit == "s" and row.target == "<= 0.35" and 0 < row.ours < row.peer
    assert "4 vs 30 steps" in row.case and row.met in (True, False)
