"""Data that ships with NoiseBrush: the bundled prior, sample guides, icons."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
