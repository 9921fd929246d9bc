"""NoiseBrush engine: priors, samplers, edits, requests; never imports Qt."""
