"""Media input/output on PyAV: probing, decoding frames and audio, encoding test and synthetic media."""
