"""Saliency for the forensic report: which pixels of a face crop made the model call that frame fake.

Grad-CAM through captum (`LayerGradCam` on the deepest convolution of the model's visual branch
that still has a spatial map, upsampled to the crop with `LayerAttribution.interpolate`),
computed on the very clip the inference
pipeline scored: the clip is the one Predictor._prepare cuts (faces, the clip's own audio span,
masks, times), so the output explained is the frame's score in the Prediction (returned beside
the map, and checked by the tests). The explained output is the frame's visual logit when the
run trained the head giving per-frame scores, else the clip's video logit (`task.video_logit`),
i.e. what the report ranks crops by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

METHOD = "Grad-CAM (captum LayerGradCam)"


@dataclass
class Saliency:
    """Saliency maps of K face crops of one face track."""

    maps: np.ndarray  # (K, S, S) float32 in [0, 1] (1 = the most salient pixel of that crop)
    scores: np.ndarray  # (K,) P(fake) of the explained output, from the same forward pass
    peaks: np.ndarray  # (K,) raw Grad-CAM maximum before scaling to [0, 1] (0: nothing pushed towards fake)
    method: str
    layer: str  # module name of the explained layer inside the model
    target: str  # which output was explained


MIN_SIDE = 7  # Grad-CAM needs a spatial map: the deepest layer at least this many cells wide


def saliency_layer(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[str, nn.Module]:
    """(name, module) of the layer Grad-CAM explains: the deepest 2D/3D convolution of the visual
    branch (outside any audio encoder) whose output map is at least MIN_SIDE cells on its short
    side, else the one with the largest map. Found with one forward pass on `inputs`, since the
    map size depends on the crop size (a 32-px crop has a 1x1 map after a stride-32 backbone)."""
    from fakelens.models.audio import AudioEncoder

    audio = {id(m) for enc in model.modules() if isinstance(enc, AudioEncoder) for m in enc.modules()}
    convs = [(n, m) for n, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Conv3d)) and id(m) not in audio]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution in its visual branch to explain")
    sides: dict[str, int] = {}

    def record(name: str):
        def hook(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
            sides.setdefault(name, int(min(out.shape[-2:])))  # returns None: the output is untouched
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in convs]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in hooks:
            h.remove()
    seen = [(n, m) for n, m in convs if n in sides]
    if not seen:
        raise ValueError(f"no convolution of {type(model).__name__} ran on the video input")
    wide = [(n, m) for n, m in seen if sides[n] >= MIN_SIDE]
    if wide:
        return wide[-1]
    best = max(sides[n] for n, _ in seen)
    return [(n, m) for n, m in seen if sides[n] == best][-1]


def _clip_inputs(run: Any, feats: Any, face: int, position: int, device: torch.device,
                 predictor: Any = None) -> tuple[dict, int]:
    """Model inputs (batch of one) of the pipeline's clip holding sampled frame `position` of
    face track `face`, and the frame's index inside that clip: the clip Predictor._prepare cuts
    for the video (its streams, mel window, masks and times: one path, so the saliency explains
    the very input predict scored), the one that counts the frame (whose score the Prediction
    holds for it)."""
    from fakelens.inference.pipeline import Predictor
    from fakelens.models import forward_inputs

    if predictor is None:
        predictor = Predictor(run, device=device)
    clips = predictor._prepare("explained video", feats)
    for c in clips:
        if c.get("face") != face:
            continue
        hit = np.flatnonzero((np.asarray(c["positions"]) == position) & np.asarray(c["counted"], bool))
        if len(hit):
            batch = {k: torch.as_tensor(c[k])[None].to(device) for k in (*run.model.input_names,
                     *getattr(run.model, "optional_input_names", ())) if k in c}  # e.g. video (1,C,3,S,S)
            return forward_inputs(run.model, batch), int(hit[0])
    raise ValueError(f"sampled frame {position} of face track {face} was not scored (no face there)")


def face_saliency(run: Any, feats: Any, face: int, positions: Sequence[int],
                  device: str | torch.device = "cpu", predictor: Any = None) -> Saliency:
    """Grad-CAM maps for sampled frames `positions` of face track `face` (features from
    `compute_features`, run from `load_run`), on the clips `predictor` (a
    fakelens.inference.pipeline.Predictor of the run; built here when None) scores. The frame's
    per-frame logit is explained when the run trained the head giving it, else the clip's video
    logit. Raises ValueError for a model without a visual branch."""
    from captum.attr import LayerAttribution, LayerGradCam

    model = run.model
    if "video" not in model.input_names:
        raise ValueError("the model has no visual branch")
    device = torch.device(device)
    layer_name = ""
    layer = None
    size = int(feats.clip.faces.shape[2])
    names = tuple(model.input_names)
    maps, scores, peaks = [], [], []
    target_desc = ""
    if predictor is None:
        from fakelens.inference.pipeline import Predictor

        predictor = Predictor(run, device=device)
    per_frame = "frame_logits" not in predictor.untrained  # an untrained head's frame scores explain nothing
    for position in positions:
        inputs, j = _clip_inputs(run, feats, face, int(position), device, predictor)
        extra = {k: v for k, v in inputs.items() if k not in names and k in getattr(model, "optional_input_names", ())}
        inputs = {k: v for k, v in inputs.items() if k in names}
        if layer is None:
            layer_name, layer = saliency_layer(model, {**inputs, **extra})
        seen: dict[str, torch.Tensor] = {}

        def forward(*args: torch.Tensor) -> torch.Tensor:
            nonlocal target_desc
            out = dict(model(**dict(zip(names, args)), **extra))
            if "frame_logits" in out and per_frame:
                target_desc = "frame_logits at the frame (the frame's visual fake logit)"
                logit = out["frame_logits"][:, j]  # (1,)
            else:
                target_desc = "video logit of the clip holding the frame"
                logit = run.task.video_logit(out)  # (1,)
            seen["logit"] = logit.detach()
            return logit

        with torch.enable_grad():
            cam = LayerGradCam(forward, layer)
            attr = cam.attribute(tuple(inputs[n] for n in names), relu_attributions=True)
        attr = attr.detach().float()
        if attr.ndim == 5:  # a 3D convolution: (1,1,t,h,w) -> (1,1,C,S,S), the frame's slice
            clip_len = inputs["video"].shape[1]
            up = LayerAttribution.interpolate(attr, (clip_len, size, size), interpolate_mode="trilinear")
            m = up[0, 0, j]  # (S,S)
        else:  # a 2D backbone over B*T' frames: (T',1,h,w) -> (T',1,S,S)
            up = LayerAttribution.interpolate(attr, (size, size), interpolate_mode="bilinear")
            # T' = C for a per-frame model; an inflated 3D one (i3d) runs its 2D layers over the
            # clip's time steps after a temporal stride (T' = C / 2): frame j is step j * T' // C
            m = up[min(up.shape[0] - 1, j * up.shape[0] // inputs["video"].shape[1]), 0]  # (S,S)
        m = m.cpu().numpy().astype(np.float32)
        peak = float(m.max()) if m.size else 0.0
        maps.append(m / peak if peak > 0 else np.zeros_like(m))
        scores.append(float(torch.sigmoid(seen["logit"].float()).reshape(-1)[0]))
        peaks.append(peak)
    return Saliency(maps=np.stack(maps) if maps else np.zeros((0, size, size), np.float32),  # (K,S,S)
                    scores=np.asarray(scores, np.float64), peaks=np.asarray(peaks, np.float64), method=METHOD,
                    layer=layer_name, target=target_desc)


__all__ = ["METHOD", "Saliency", "face_saliency", "saliency_layer"]
