"""Inference: the one pipeline (decode -> faces -> model -> scores), named video-score aggregations and
temporal post-processing. Import submodules directly (`fakelens.inference.pipeline` imports torch)."""
