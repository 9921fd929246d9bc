"""The painting model, free of Qt: layers, pixels and blend modes, strokes, brushes, transforms and
OpenRaster/image files. Usable and testable with no display and no Qt installed.

May import: numpy, Pillow and itself. Not Qt, not the rest of the GUI, not the engine.
"""
