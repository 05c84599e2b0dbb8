"""Faces as instances in training (fakelens.tasks.faces): a batch of videos with several face
tracks folded into face instances, the multiple-instance term over a video's faces, and the
losses leaving unknown (-1) face labels out."""

from __future__ import annotations

import pytest
import torch

from fakelens.tasks import TaskConfig, build_task
from fakelens.tasks.faces import bag_term, fold_faces, has_faces
from fakelens.tasks.pooling import PoolingParams


def _batch():
    """Two videos, two face slots: video 0 has two faces (fake video, which face unknown), video 1
    one face (real)."""
    return {
        "video": torch.arange(2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 3, 1, 1, 1).expand(2, 2, 3, 3, 4, 4),
        "label": torch.tensor([[-1.0, -1.0], [0.0, 0.0]]),  # (B, F)
        "mask": torch.tensor([[[True] * 3, [True, True, False]], [[True] * 3, [False] * 3]]),  # (B, F, T)
        "face_label": torch.tensor([[-1.0, -1.0], [0.0, 0.0]]),  # (B, F) which face is fake: not known in video 0
        "face_mask": torch.tensor([[True, True], [True, False]]),  # (B, F)
        "video_label": torch.tensor([1.0, 0.0]),
        "bag_label": torch.tensor([1.0, 0.0]),
        "id": ["v0", "v1"],
    }


def test_fold_faces_gives_one_instance_per_present_face():
    batch = _batch()
    assert has_faces(batch) and not has_faces({"label": torch.zeros(2)})
    inst, bag = fold_faces(batch)
    assert bag.tolist() == [0, 0, 1]
    assert inst["video"].shape == (3, 3, 3, 4, 4) and inst["label"].tolist() == [-1.0, -1.0, 0.0]
    assert inst["mask"].tolist() == [[True] * 3, [True, True, False], [True] * 3]
    assert inst["id"] == ["v0", "v0", "v1"]
    # a face not known to be the fake one carries no video label: no unknown-stream rule turns its
    # labels into the video's (it trains through the MIL term)
    assert inst["video_label"].tolist() == [-1.0, -1.0, 0.0]
    plain, _ = fold_faces({k: v for k, v in batch.items() if k != "face_label"})
    assert plain["video_label"].tolist() == [1.0, 1.0, 0.0]
    assert "face_mask" not in inst
    torch.testing.assert_close(inst["video"][2], batch["video"][1, 0])  # the absent slot is dropped
    with pytest.raises(ValueError, match="not \\(B, F"):
        fold_faces({**batch, "times": torch.zeros(2, 5)})


def test_bag_term_pools_the_faces_of_videos_with_unknown_faces():
    inst, bag = fold_faces(_batch())
    logits = torch.tensor([2.0, -1.0, 3.0], requires_grad=True)
    term = bag_term(logits, inst, bag, 2, "max", PoolingParams())
    # only video 0 holds unknown faces: BCE(max(2, -1), 1); video 1's known face is left to the per-face term
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))
    torch.testing.assert_close(term, expected)
    term.backward()
    assert logits.grad[0] < 0 and logits.grad[1] == 0 and logits.grad[2] == 0
    known = {**inst, "face_label": torch.tensor([1.0, 0.0, 0.0])}  # which face is fake: known
    assert bag_term(logits, known, bag, 2, "max", PoolingParams()) is None


def test_faces_loss_leaves_unknown_faces_out_of_the_per_face_term():
    task = build_task(TaskConfig())
    inst, bag = fold_faces(_batch())
    logits = torch.tensor([0.0, 5.0, -2.0], requires_grad=True)
    loss, parts = task.faces_loss({"logit": logits}, inst, bag, 2)
    per_face = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(-2.0), torch.tensor(0.0))
    torch.testing.assert_close(parts["video"], per_face)  # the real face only
    assert "faces_mil" in parts
    torch.testing.assert_close(loss.detach(), per_face + parts["faces_mil"])
    # a plain batch (one face per video, labels known) is the task's loss unchanged
    plain = {"label": torch.tensor([1.0, 0.0])}
    out = {"logit": torch.tensor([1.0, -1.0])}
    torch.testing.assert_close(task.faces_loss(out, plain, torch.tensor([0, 1]), 2)[0], task.loss(out, plain)[0])

