"""Media -> features: the one path from a video file to what models read (see fakelens.features.media)."""
