"""Dockable panels; each binds to a model object and keeps no state of its own."""
