"""Host adapters (Krita, GIMP) that talk to the engine server."""
