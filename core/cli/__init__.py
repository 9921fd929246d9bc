"""The `noisebrush` command line: one module per command, options derived from the engine's requests.

May import: the engine, the server and the laboratory. Not the GUI: the desktop app and the benchmarks
add their commands through the `noisebrush.commands` entry points.
"""
