"""NoiseBrush Studio, the PyQt6 desktop app."""
