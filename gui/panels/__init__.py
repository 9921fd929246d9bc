"""The Studio's docked panels (brush, colour, layers, SDEdit, LEDITS): widgets bound to the document and
the tool state. May import: the rest of `gui` and the engine's requests."""
