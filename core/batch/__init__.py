"""Batch: one request over many frames (a folder of images, an image sequence, the layers of an .ora),
in-process or on a pool of Ray actors, each output written once and atomically, resumable from a manifest.

May import: the engine (`noisebrush.core.engine`) and `noisebrush.core.errors`. Nothing of the server, the
command line, the laboratory or the GUI. Ray is imported only by `cluster`, and only when asked for.
Entry point for every surface: `runner.run_batch(Batch(...), executor)`.
"""
