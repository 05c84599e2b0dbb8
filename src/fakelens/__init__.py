"""fakelens: audio-visual deepfake detection from challenge data to submission and report."""

__version__ = "0.1.0"
