"""The bundled prior's laboratory: the procedural scenes it learned, its network, training, the concept
classifier and the evaluations that judge it (docs/PRIOR.md).

May import: the engine and `noisebrush.core.errors`. Not the server, the command line or the GUI.
"""
