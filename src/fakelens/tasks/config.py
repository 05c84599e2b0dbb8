"""The `task` section of a recipe, importable without torch (the CLI checks a config before the
heavy imports); the tasks themselves are in fakelens.tasks.classification."""

from __future__ import annotations

from dataclasses import dataclass

from fakelens.registry import check_registered


UNKNOWN_STREAM_RULES = ("auto", "video_label", "ignore")


@dataclass
class TaskConfig:
    """What the model is trained to predict and with which loss (the `task` section of a recipe)."""

    name: str = "classification"  # a TASKS entry: classification | mil | av
    pooling: str = "lse"  # MIL pooling (a POOLINGS entry) for `mil` and the MIL terms of `av`
    topk: float = 0.25  # fraction of frames for topk_mean pooling
    lse_r: float = 5.0  # sharpness of log-sum-exp pooling
    frame_weight: float = 0.0  # per-frame BCE on `frame_logits` vs `frame_labels` (av: `visual_frame_labels`)
    audio_frame_weight: float = 0.0  # av: BCE of `time_logits` vs `audio_frame_labels` (per audio step)
    visual_weight: float = 0.5  # av: weight of the visual-fake head loss
    audio_weight: float = 0.5  # av: weight of the audio-fake head loss
    mil_weight: float = 0.0  # av: weight of pooled frame/time logits vs the visual/audio labels
    # What a target trains on where the dataset does not say which stream of a fake was manipulated
    # (DFDC, CSV labels, real/fake folders: its per-stream labels are unknown, -1):
    #   "video_label": the video's label (the multimedia competition baseline trains its audio-only
    #                  model so); "ignore": those values are left out of the loss;
    #   "auto": the video label for the model's main target (`label`: e.g. an audio-only model's
    #           window label), left out for the per-stream heads and terms of `av`, and a per-stream
    #           term left with one class by that is disabled (the run says so).
    unknown_stream: str = "auto"

    def __post_init__(self) -> None:
        check_registered("fakelens.tasks.classification", "TASKS", self.name)  # raises with a suggestion
        check_registered("fakelens.tasks.pooling", "POOLINGS", self.pooling)
        if not 0 < self.topk <= 1:
            raise ValueError(f"task.topk must be in (0, 1], got {self.topk}")
        if self.lse_r <= 0:
            raise ValueError(f"task.lse_r must be > 0, got {self.lse_r}")
        if self.unknown_stream not in UNKNOWN_STREAM_RULES:
            raise ValueError(f"task.unknown_stream must be one of {', '.join(UNKNOWN_STREAM_RULES)}, "
                             f"got {self.unknown_stream!r}")
        for key in ("frame_weight", "audio_frame_weight", "visual_weight", "audio_weight", "mil_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"task.{key} must be >= 0, got {getattr(self, key)}")
