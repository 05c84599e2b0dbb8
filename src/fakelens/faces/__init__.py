"""Faces: detectors by name (FACE_DETECTORS), tracking over time, square crops with margin, and
`extract_faces`, the one function the preprocessing job and the inference pipeline both call."""
