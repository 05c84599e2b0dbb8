"""Saliency for the forensic report: which pixels of a face crop made the model call that frame fake.

Grad-CAM through captum (`LayerGradCam` on the deepest convolution of the model's visual branch
that still has a spatial map, upsampled to the crop with `LayerAttribution.interpolate`),
computed on the very clip the inference
pipeline scored: the clip is cut with the pipeline's own `tile_clips` / `mel_window`, so the output
explained is the frame's score in the Prediction (returned beside the map, and checked by the
tests). The explained output is the frame's visual logit when the model scores frames, else the
clip's video logit (`task.video_logit`), i.e. what the report ranks crops by.
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


def _clip_inputs(run: Any, feats: Any, face: int, position: int, device: torch.device) -> tuple[dict, int]:
    """Model inputs (batch of one) of the pipeline's clip holding sampled frame `position` of
    face track `face`, and the frame's index inside that clip."""
    from fakelens.data.dataset import face_frames, mel_window, tile_face

    faces = feats.clip.faces[face]  # (T, S, S, 3) uint8
    times = feats.clip.times  # (T,)
    window = run.cache.window_frames if run.cache.sampling == "windows" else None
    frames = face_frames(feats.clip.found, bool(feats.clip.fallback))[face]  # (T,)
    tiling = tile_face(frames, run.cfg.data.clip_frames, window)  # (K, C) each: the face's own frames, as predict
    # the clip that counts the frame (the one whose scores the Prediction holds for it)
    holding = np.flatnonzero(((tiling.picks == position) & tiling.counted).any(axis=1))
    if len(holding) == 0:
        raise ValueError(f"sampled frame {position} of face track {face} was not scored (no face there)")
    k = int(holding[0])
    pick = tiling.picks[k]
    video = torch.from_numpy(np.ascontiguousarray(faces[pick])).permute(0, 3, 1, 2).float() / 255.0  # (C,3,S,S)
    inputs = {"video": video[None].to(device),  # (1,C,3,S,S)
              "mask": torch.from_numpy(tiling.mask[k])[None].to(device)}  # (1,C) False = padding
    if "audio" in run.model.input_names:
        mel, _, _ = mel_window({"mel": feats.mel, "mel_times": feats.mel_times}, float(times[pick[0]]),
                               int(run.audio_width))
        inputs["audio"] = torch.from_numpy(mel)[None, None].to(device)  # (1,1,M,W)
    return inputs, int(np.flatnonzero(pick == position)[0])


def face_saliency(run: Any, feats: Any, face: int, positions: Sequence[int],
                  device: str | torch.device = "cpu") -> Saliency:
    """Grad-CAM maps for sampled frames `positions` of face track `face` (features from
    `compute_features`, run from `load_run`). Raises ValueError for a model without a visual branch."""
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
    for position in positions:
        inputs, j = _clip_inputs(run, feats, face, int(position), device)
        extra = {k: v for k, v in inputs.items() if k not in names and k in getattr(model, "optional_input_names", ())}
        inputs = {k: v for k, v in inputs.items() if k in names}
        if layer is None:
            layer_name, layer = saliency_layer(model, {**inputs, **extra})
        seen: dict[str, torch.Tensor] = {}

        def forward(*args: torch.Tensor) -> torch.Tensor:
            nonlocal target_desc
            out = dict(model(**dict(zip(names, args)), **extra))
            if "frame_logits" in out:
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
        else:  # a 2D backbone over B*C frames: (C,1,h,w) -> (C,1,S,S)
            up = LayerAttribution.interpolate(attr, (size, size), interpolate_mode="bilinear")
            m = up[j, 0] if up.shape[0] == inputs["video"].shape[1] else up[0, 0]  # (S,S)
        m = m.cpu().numpy().astype(np.float32)
        peak = float(m.max()) if m.size else 0.0
        maps.append(m / peak if peak > 0 else np.zeros_like(m))
        scores.append(float(torch.sigmoid(seen["logit"].float()).reshape(-1)[0]))
        peaks.append(peak)
    return Saliency(maps=np.stack(maps) if maps else np.zeros((0, size, size), np.float32),  # (K,S,S)
                    scores=np.asarray(scores, np.float64), peaks=np.asarray(peaks, np.float64), method=METHOD,
                    layer=layer_name, target=target_desc)


__all__ = ["METHOD", "Saliency", "face_saliency", "saliency_layer"]
