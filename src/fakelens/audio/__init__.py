"""Audio features: log-mel spectrograms aligned in seconds with the video frames."""
