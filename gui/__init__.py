"""NoiseBrush Studio, the PyQt6 desktop app: the document (layers, selection, history), the canvas and its
tools, the panels, and the worker thread that runs the engine.

May import: the engine (`noisebrush.core.engine`), `noisebrush.core.errors` and its own painting model
(`gui.model`, which imports no Qt). Not the server, the command line or the laboratory.
"""
