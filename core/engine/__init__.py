"""The engine: one request per operation (SDEdit, LEDITS), the priors that run them, pure samplers,
semantic guidance, inversion, masks, image files, progress and the memory estimate of a run.

May import: itself and `noisebrush.core.errors`. Nothing of the server, the command line, the
laboratory or the GUI. Importing `requests` must stay free of torch (the command line parses with it).
"""
