"""Detection models built by name (`create_model("frame", backbone="efficientnet_b0")`):
pure nn.Modules taking keyword tensors in [0, 1] and returning a dict of logits.

| name | forward | returns |
|---|---|---|
| frame, frame_tiny | video (B,T,3,H,W) | logit (B,), frame_logits (B,T) |
| clip3d | video (B,T,3,H,W) | logit (B,) |
| audio, audio_tiny | audio (B,1,n_mels,F) | logit (B,), time_logits (B,F'); `.time_stride` mel frames per step |
| av, av_tiny | video, audio | logit, visual_logit, audio_logit (B,), frame_logits (B,T), time_logits (B,F') |
"""

from fakelens.models import audio, av, clip3d, frame  # noqa: F401  (register the models)
from fakelens.models.backbones import BACKBONES, LoadReport, image_backbone_names, load_weights, video_backbone_names
from fakelens.models.config import ModelConfig
from fakelens.models.factory import MODELS, ModelSpec, as_config, create_model, example_inputs, model_config, resolve_config
from fakelens.models.temporal import POOLINGS

__all__ = [
    "BACKBONES", "LoadReport", "MODELS", "ModelConfig", "ModelSpec", "POOLINGS", "as_config", "create_model",
    "example_inputs", "image_backbone_names", "load_weights", "model_config", "resolve_config",
    "video_backbone_names",
]
