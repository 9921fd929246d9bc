"""NoiseBrush's engine and the surfaces built directly on it; never imports Qt or the GUI.

- `engine`: requests, priors, samplers, SDEdit and LEDITS, masks, image files, progress. Imports only
  itself and `errors`.
- `batch`: one request over many frames (folders, sequences, .ora layers), resumable, in-process or on a
  Ray cluster. Imports the engine.
- `server`: the engine over HTTP (jobs, journal, auth, JSON shapes). Imports the engine (and may import `batch`).
- `cli`: the `noisebrush` command line. Imports everything above.
- `lab`: the bundled prior's laboratory (procedural scenes, its network, training, classifier,
  evaluation). Imports the engine.
- `errors`, `version`: shared by all of them.

docs/ARCHITECTURE.md draws the layers; tests/test_layers.py enforces them (import-linter).
"""
