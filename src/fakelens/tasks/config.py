"""The `task` section of a recipe, importable without torch (the CLI checks a config before the
heavy imports); the tasks themselves are in fakelens.tasks.classification."""

from __future__ import annotations

from dataclasses import dataclass

from fakelens.registry import check_registered


UNKNOWN_STREAM_RULES = ("auto", "video_label", "ignore")


@dataclass
class TaskConfig:
    """What the model is trained to predict and with which loss (the `task` section of a recipe)."""

    name: str = "classification"  # a TASKS entry: classification | mil | av | localization
    pooling: str = "lse"  # MIL pooling (a POOLINGS entry) for `mil` and the MIL terms of `av`
    face_pooling: str = "max"  # pooling over a video's faces whose labels are not known (a POOLINGS entry):
                               # a fake video has at least one fake face
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
    # localization (fakelens.tasks.localization): per pyramid point a focal-loss fake score and
    # start/end distances with an IoU loss; frame_weight trains the per-step `frame_logits`
    focal_alpha: float = 0.25  # weight of the positive points in the sigmoid focal loss
    focal_gamma: float = 2.0
    reg_weight: float = 1.0  # weight of the boundary (IoU) loss
    iou_loss: str = "diou"  # diou | giou
    center_radius: float = 1.5  # a point is positive within this many strides of a segment's centre
    regression_base: float = 4.0  # level l answers for segments reaching [base*2^(l-1), base*2^l) steps from it
    modality_weight: float = 0.0  # BCE of the points' visual-fake / audio-fake logits (per-stream segments)
    # av: probability, per training clip, that one stream (the faces or the audio, equally likely) is
    # hidden from the model; the losses that need it are left out for that clip, so each branch's
    # head learns to stand alone and a video without audio (or without a face) can still be scored;
    # only the av task has two streams to hide: the others leave their batches as they are
    modality_dropout: float = 0.0

    def __post_init__(self) -> None:
        check_registered("fakelens.tasks.classification", "TASKS", self.name)  # raises with a suggestion
        check_registered("fakelens.tasks.pooling", "POOLINGS", self.pooling)
        check_registered("fakelens.tasks.pooling", "POOLINGS", self.face_pooling)
        if not 0 < self.topk <= 1:
            raise ValueError(f"task.topk must be in (0, 1], got {self.topk}")
        if self.lse_r <= 0:
            raise ValueError(f"task.lse_r must be > 0, got {self.lse_r}")
        if self.unknown_stream not in UNKNOWN_STREAM_RULES:
            raise ValueError(f"task.unknown_stream must be one of {', '.join(UNKNOWN_STREAM_RULES)}, "
                             f"got {self.unknown_stream!r}")
        if self.iou_loss not in ("diou", "giou"):
            raise ValueError(f"task.iou_loss must be 'diou' or 'giou', got {self.iou_loss!r}")
        if not 0 < self.focal_alpha < 1 or self.focal_gamma < 0:
            raise ValueError(f"task.focal_alpha must be in (0, 1) and focal_gamma >= 0, got {self.focal_alpha}, "
                             f"{self.focal_gamma}")
        if self.center_radius <= 0 or self.regression_base <= 0:
            raise ValueError("task.center_radius and task.regression_base must be > 0")
        for key in ("frame_weight", "audio_frame_weight", "visual_weight", "audio_weight", "mil_weight",
                    "reg_weight", "modality_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"task.{key} must be >= 0, got {getattr(self, key)}")
        if not 0 <= self.modality_dropout < 1:
            raise ValueError(f"task.modality_dropout must be in [0, 1), got {self.modality_dropout}")
