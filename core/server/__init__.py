"""The engine over HTTP on loopback: the FastAPI app, the job queue and its journal, the token and the
guard in front of every route, and the JSON shapes derived from the engine's requests.

May import: the engine and `noisebrush.core.errors`/`version`. Not the command line, the laboratory or
the GUI.
"""
