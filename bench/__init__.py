"""Benchmarks, all in one place: the harness (paired timing, memory probes), the engine's, the job path's,
LEDITS' and the Studio's cases, and the random stand-in models that benchmarks and tests build offline.

May import everything below it (core's engine, server and laboratory; the GUI for the Studio's case);
nothing in core/ or gui/ imports it. `noisebrush bench` is registered through an entry point.
"""
