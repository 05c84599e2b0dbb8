"""White-box adversarial attacks on the face crops a model scores (FGSM, PGD through torchattacks).

The attack sees what the model sees: each clip's face crops (C, 3, S, S) in [0, 1] after
decoding, face tracking and cropping, with the clip's other inputs (audio, masks, times) held
fixed. It pushes the score the video rests on (the task's video logit, or the one stream's head
for a video scored from one stream) away from the video's true label, within an L-inf ball of
radius eps. This is the upper bound of a threat, not a file an attacker could ship: the crops
are perturbed after the lossy steps a real upload goes through.

torchattacks wants a classifier of N classes: the binary logit z is given as the two logits
(-z/2, z/2), whose softmax is (1 - sigmoid(z), sigmoid(z)), so its cross-entropy is the model's
own binary cross-entropy.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

from fakelens.errors import FakelensError

PGD_STEPS = 10  # PGD: steps of eps / 4 from a random start in the ball


class _TwoClass(nn.Module):
    """The model as a two-class classifier of one clip batch's face crops, the other inputs fixed."""

    def __init__(self, predictor: Any, rest: dict[str, torch.Tensor], head: str | None):
        super().__init__()
        self.model = predictor.run.model
        self.task = predictor.run.task
        self.rest = rest
        self.head = head

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        from fakelens.models import forward_inputs

        out = self.model(**forward_inputs(self.model, {**self.rest, "video": video}))
        z = out[self.head] if self.head else self.task.video_logit(out)  # (B,)
        return torch.stack([-z / 2, z / 2], dim=1).float()  # (B, 2)


def _attack(name: str, model: nn.Module, eps: float) -> Any:
    try:
        import torchattacks
    except ImportError as e:  # an optional extra
        raise FakelensError("adversarial perturbations need torchattacks: pip install --no-deps torchattacks") from e
    if name == "fgsm":
        return torchattacks.FGSM(model, eps=eps)
    if name == "pgd":
        return torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=PGD_STEPS, random_start=True)
    raise FakelensError(f"unknown attack {name!r}: fgsm or pgd")


class ClipAttack:
    """A Predictor.clip_transform: replaces the face crops of a video's clips by adversarial ones.
    `label` of a record: 1 = fake, 0 = real (the attack's target is the other side)."""

    def __init__(self, predictor: Any, name: str, eps: float, seed: int = 0):
        if "video" not in predictor.inputs:
            raise FakelensError(f"{name} perturbs face crops: model {predictor.run.cfg.model.name!r} has no visual input")
        if not 0 < eps <= 1:
            raise FakelensError(f"{name}: eps must be in (0, 1] (pixels in [0, 1]), got {eps}")
        self.predictor, self.name, self.eps, self.seed = predictor, name, float(eps), int(seed)

    def __call__(self, rec: Any, clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from fakelens.inference.pipeline import AUDIO_ONLY

        if not clips or clips[0].get("streams") == AUDIO_ONLY or "video" not in clips[0]:
            return clips  # no face crops to attack
        pr = self.predictor
        label = int(rec.label.as_int)
        head = pr.stream_head(clips[0]["streams"]) if clips[0].get("streams") not in (None, "audio-visual") else None
        names = tuple(pr.inputs) + tuple(getattr(pr.run.model, "optional_input_names", ()))
        out = [dict(c) for c in clips]
        # seeded per video: PGD's random start is the same on every run
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed * 1_000_003 + int.from_bytes(hashlib.sha256(rec.id.encode()).digest()[:4], "little"))
        try:
            for i in range(0, len(out), pr.batch_size):
                part = out[i:i + pr.batch_size]
                batch = {k: torch.stack([torch.as_tensor(c[k]) for c in part]).to(pr.device)
                         for k in names if k in part[0]}  # video (B, C, 3, S, S), ...
                video = batch.pop("video").float()
                # in eval mode: torchattacks runs the model in the wrapper's mode and leaves it so
                # (a wrapper in training mode would leave the model's dropout on for the scoring)
                model = _TwoClass(pr, batch, head).eval()
                with torch.enable_grad():
                    attack = _attack(self.name, model, self.eps)
                    adv = attack(video, torch.full((video.shape[0],), label, dtype=torch.long, device=pr.device))
                for c, v in zip(part, adv.detach().cpu()):
                    c["video"] = v  # (C, 3, S, S)
        finally:
            torch.random.set_rng_state(gen_state)
            pr.run.model.eval()
        return out
