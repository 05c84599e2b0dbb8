"""The face stage on synthetic scenes that look like DFDC and broadcast footage (issue 10): two
people of whom one is fake (the fake one smaller and darker), a person who leaves the frame, a
cut between two people at the same spot. Faces are found by MTCNN on decoded h264 video. The
scenes come from fakelens.data.synthetic.scenes and, for the same tests, from the generator's
`scenes` preset (`fakelens data synth OUT --preset scenes`, DFDC layout)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from fakelens.data.cache import CacheConfig, load_npz, preprocess, read_index
from fakelens.faces.tracking import box_iou

pytestmark = pytest.mark.slow
SIZE = (216, 384)  # (H, W): faces of 40-70 px, as DFDC's at half resolution


class _DarknessModel(nn.Module):
    """A controlled scorer: a frame's fake logit grows as its crop darkens; the clip logit is the
    mean over the frames the mask keeps (as the frame models pool). The fake face of these
    scenes is the darker one, so a correct pipeline must rank it first."""

    input_names = ("video",)
    optional_input_names = ("mask",)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b, t = video.shape[:2]
        m = torch.ones(b, t, dtype=torch.bool) if mask is None else mask.bool()
        frame = 4 - 10 * video.flatten(2).mean(dim=2)  # (B, T)
        logit = (frame * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)
        return {"logit": logit, "frame_logits": frame, "frame_mask": m}


def _predictor(cache_cfg: CacheConfig, face_aggregate: str = "max", clip_frames: int = 4, max_faces: int | None = None):
    from fakelens.inference.pipeline import LoadedRun, Predictor
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.config import load_train_config

    cfg = load_train_config(None, ["model.name=frame_tiny", f"data.clip_frames={clip_frames}",
                                   "predict.level=frames", f"predict.face_aggregate={face_aggregate}",
                                   f"data.max_faces={'null' if max_faces is None else max_faces}"])
    run = LoadedRun(cfg=cfg, cache=cache_cfg, model=_DarknessModel(), task=build_task(TaskConfig()), prior=0.5,
                    checkpoint=None, audio_width=None)
    return Predictor(run, device="cpu")


def _person_of_track(track_boxes: np.ndarray, found: np.ndarray, truth: np.ndarray, indices: np.ndarray) -> int:
    """The scene person (truth (P, T_video, 4)) a face track's boxes (T, 4) lie on."""
    ious = []
    for p in range(len(truth)):
        gt = truth[p, indices]  # (T, 4)
        ok = found & np.isfinite(gt).all(axis=1)
        ious.append(np.mean([box_iou(track_boxes[t][None], gt[t][None])[0, 0] for t in np.flatnonzero(ok)])
                    if ok.any() else 0.0)
    assert max(ious) > 0.5, ious
    return int(np.argmax(ious))


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Two DFDC originals with two people each and their fakes (one person's face swapped: the
    smaller and darker one), preprocessed with two faces per video."""
    from fakelens.data.formats import load_dataset
    from fakelens.data.synthetic.scenes import write_dfdc_people

    out = tmp_path_factory.mktemp("people")
    truth = write_dfdc_people(out, n_originals=2, size=SIZE, face=70.0, fake_scale=0.65, fake_brightness=0.55)
    cfg = CacheConfig(n_frames=10, size=32, detector="mtcnn", max_faces=2)
    preprocess(load_dataset(truth.folder).records, out / "cache", cfg, progress=False)
    return truth, out / "cache", cfg


@pytest.fixture(scope="module")
def scenes_preset(tmp_path_factory):
    """The `scenes` preset as `fakelens data synth` writes it: {scene: (fake video, its original,
    the fake's manifest entry)} and the output folder."""
    from fakelens.cli.main import main

    root = tmp_path_factory.mktemp("preset") / "scenes"
    assert main(["data", "synth", str(root), "--preset", "scenes", "--quiet"]) == 0
    videos = json.loads((root / "synthetic.json").read_text())["videos"]
    by_scene = {v["scene"]: (root / v["file"], root / v["original"], v) for v in videos if v["original"]}
    assert sorted(by_scene) == ["cut", "leave", "two_people"]  # seed 0 draws each situation with a fake
    return by_scene, root


def test_the_scenes_preset_fake_face_is_the_track_labelled_fake(scenes_preset):
    """The generator's two-person fake (DFDC layout, one face re-enacted): preprocessed with two
    faces, the fake face's track (on the sidecar's fake person) is labelled fake against the
    original, the other face real; predict scores and the report shows both."""
    from fakelens.data.dataset import ClipDataset
    from fakelens.data.formats import load_dataset
    from fakelens.inference.evidence import Analyser
    from fakelens.report.document import report_document

    by_scene, root = scenes_preset
    fake, original, entry = by_scene["two_people"]
    sidecar = json.loads((root / f"{entry['split']}_face_boxes.json").read_text())[entry["file"]]
    truth = np.array([[[np.nan] * 4 if b is None else b for b in f["boxes"]] for f in sidecar["faces"]], np.float32)
    assert [f["fake"] for f in sidecar["faces"]].count(True) == 1
    cfg = CacheConfig(n_frames=10, size=32, detector="mtcnn", max_faces=2)
    records = [r for r in load_dataset(fake.parent).records if r.path.name in (fake.name, original.name)]
    preprocess(records, root / "cache", cfg, progress=False)
    ds = ClipDataset(root / "cache", clip_frames=4, random=False)
    v = next(i for i, r in enumerate(ds.rows) if r["id"].endswith(fake.name))
    z = load_npz(root / "cache", ds.rows[v], ("boxes", "found", "indices"))
    persons = [_person_of_track(z["boxes"][f], z["found"][f], truth, z["indices"]) for f in range(2)]
    assert sorted(persons) == [0, 1]
    fake_track = persons.index(entry["fake_person"])
    diffs = [f["diff"] for f in ds.rows[v]["faces"]]
    assert diffs[fake_track] > 5.0 > diffs[1 - fake_track], diffs
    # the re-enacted face is fake; the untouched one differs by 1-2.5 grey levels (the encoder spends
    # its bits otherwise beside the changed face): above the default equal threshold (1), not told
    assert ds.face_labels(v).tolist() == [1.0 if f == fake_track else -1.0 for f in range(2)], diffs
    told = ClipDataset(root / "cache", clip_frames=4, random=False, face_equal_threshold=2.5)
    assert told.face_labels(v).tolist() == [float(f == fake_track) for f in range(2)], diffs
    p = _predictor(cfg)
    # predict scores each face on its own frames, where that person is: the face's frames are the
    # track's found frames, its boxes lie on the sidecar person at each of them, its span is theirs
    feats = p.features(fake)
    scored, _ = p.predict_features(fake.name, feats)
    clip = feats.clip
    assert [f.index for f in scored.faces] == [0, 1] and scored.score == max(f.score for f in scored.faces)
    for f in scored.faces:
        found = np.asarray(clip.found[f.index])
        np.testing.assert_allclose(f.frame_times, np.asarray(clip.times)[found])
        np.testing.assert_allclose(f.boxes, np.asarray(clip.boxes[f.index])[found])
        person = _person_of_track(np.asarray(clip.boxes[f.index]), found, truth, np.asarray(clip.indices))
        gt = truth[person, np.asarray(clip.indices)[found]]  # (T_f, 4) the person's true boxes
        assert min(box_iou(b[None], g[None])[0, 0] for b, g in zip(f.boxes, gt)) > 0.5
        assert len(f.frame_scores) == len(f.frame_times) and f.frame_times.min() < 0.3 and f.frame_times.max() > 1.7
    ev = Analyser(p, saliency=False).analyse(fake)
    assert ev.status == "ok", ev.error
    doc = report_document(ev)
    assert [f["index"] for f in doc["faces"]] == [0, 1] and {c["face"] for c in doc["crops"]} == {0, 1}
    top = max(doc["faces"], key=lambda f: f["score"])
    assert doc["verdict"]["p_fake"] == pytest.approx(top["score"]) and f"face {top['index']} decided" in doc["verdict"]["aggregate"]


def test_two_people_one_fake_the_fake_face_is_found_labelled_and_trained_on(people):
    """Issue 10 item 1: the small dark fake face was never shown to the model (face 0 only). Now
    both tracks are kept, the fake's tracks are compared with its original, and the training item
    of a fake holds the fake face labelled fake and the real one labelled real."""
    from fakelens.data.dataset import ClipDataset
    from fakelens.features.originals import FACE_DIFF_THRESHOLD
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.tasks.faces import fold_faces

    truth, cache, _ = people
    rows = {r["id"]: r for r in read_index(cache)}
    ds = ClipDataset(cache, clip_frames=4, random=False)
    seen = 0
    for v, row in enumerate(ds.rows):
        name = row["id"]
        assert len(row["faces"]) == 2, row["faces"]  # both people, each a track of its own
        z = load_npz(cache, row, ("boxes", "found", "indices", "detection"))
        persons = [_person_of_track(z["boxes"][f], z["found"][f], truth.boxes[name], z["indices"]) for f in range(2)]
        assert sorted(persons) == [0, 1]
        kept = z["detection"][z["found"] & (z["detection"] > 0)]  # MTCNN's confidence, stored where detected
        assert kept.size and (kept >= 0.7).all() and (kept <= 1).all()  # at least its last stage's threshold (0.7)
        labels = ds.face_labels(v)
        fake_person = truth.fake_person[name]
        if fake_person is None:
            assert labels.tolist() == [0.0, 0.0] and rows[name]["original_compared"] is None
            continue
        seen += 1
        fake_track = persons.index(fake_person)
        assert fake_track == 1  # the smaller face has fewer detections or a smaller area: once never trained on
        diffs = [f["diff"] for f in row["faces"]]
        assert rows[name]["original_compared"] == "yes"
        assert diffs[fake_track] > FACE_DIFF_THRESHOLD > diffs[1 - fake_track], diffs
        assert labels.tolist() == [float(f == fake_track) for f in range(2)]
        item = ds[v]  # the training item: every face with its own label
        assert item["face_mask"].tolist() == [True, True]
        assert item["label"].tolist() == [float(f == fake_track) for f in range(2)]
        assert item["video_label"] == 1.0 and item["bag_label"] == 1.0
        assert item["mask"][fake_track].any()
        batch = torch.utils.data.default_collate([item])
        instances, bag = fold_faces(batch)
        assert instances["video"].shape[0] == 2 and bag.tolist() == [0, 0]
        task = build_task(TaskConfig())
        logits = torch.tensor([0.0, 0.0], requires_grad=True)
        loss, parts = task.faces_loss({"logit": logits}, instances, bag, 1)
        assert "faces_mil" not in parts  # every face's label is known: no multiple-instance term needed
        loss.backward()
        assert logits.grad[fake_track] < 0 < logits.grad[1 - fake_track]  # fake pushed up, real down
    assert seen == 2
    one = ClipDataset(cache, clip_frames=4, random=False, max_faces=1)  # data.max_faces=1: the main track only
    assert one.max_faces == 1 and one[0]["face_mask"].tolist() == [True] and one.n_tiles(0) < ds.n_tiles(0)
    # a threshold no face exceeds: which face is fake is not known; the video's faces are a bag
    # trained by the multiple-instance term (max over faces: the most suspicious face)
    blind = ClipDataset(cache, clip_frames=4, random=False, face_diff_threshold=1e6)
    v = next(i for i, r in enumerate(blind.rows) if truth.fake_person[r["id"]] is not None)
    assert blind.face_labels(v).tolist() == [-1.0, -1.0]
    instances, bag = fold_faces(torch.utils.data.default_collate([blind[v]]))
    assert instances["label"].tolist() == [-1.0, -1.0] and instances["bag_label"].tolist() == [1.0, 1.0]
    logits = torch.tensor([0.5, -0.5], requires_grad=True)
    loss, parts = build_task(TaskConfig()).faces_loss({"logit": logits}, instances, bag, 1)
    assert "faces_mil" in parts and float(parts["video"]) == 0.0  # no per-face term on unknown labels
    loss.backward()
    assert logits.grad[0] < 0 and logits.grad[1] == 0  # only the most suspicious face is pushed up


def test_the_fake_face_drives_the_video_score_and_the_report_shows_both_faces(people):
    """Issue 10 items 1 and 3: predict scores every face track; with max over faces the (darker,
    smaller) fake face's score is the video's, and the report lists both faces."""
    from fakelens.inference.evidence import Analyser
    from fakelens.report.document import report_document, validate_report

    truth, _, cfg = people
    name = next(n for n, k in truth.fake_person.items() if k is not None)
    path = truth.folder / name
    pred = _predictor(cfg)
    feats = pred.features(path)
    p, _ = pred.predict_features(name, feats)
    assert len(p.faces) == 2 and p.face_aggregate == "max"
    persons = [_person_of_track(np.asarray(feats.clip.boxes[f]), np.asarray(feats.clip.found[f]), truth.boxes[name],
                                np.asarray(feats.clip.indices)) for f in range(2)]
    fake = persons.index(truth.fake_person[name])
    assert p.faces[fake].score > p.faces[1 - fake].score
    assert p.score == pytest.approx(p.faces[fake].score)
    main, _ = _predictor(cfg, face_aggregate="main").predict_features(name, feats)
    assert main.score == pytest.approx(p.faces[0].score) and main.score < p.score  # face 0 alone misses it
    one, _ = _predictor(cfg, max_faces=1).predict_features(name, feats)  # data.max_faces: the main track only
    assert len(one.faces) == 1 and one.score == pytest.approx(main.score)

    ev = Analyser(pred, saliency=False).analyse(path)
    assert ev.status == "ok", ev.error
    doc = report_document(ev)
    validate_report(doc)
    assert [f["index"] for f in doc["faces"]] == [0, 1] and doc["face_aggregate"] == "max"
    assert doc["faces"][fake]["score"] == pytest.approx(p.score)  # the same pipeline: the fake face flagged
    assert {c["face"] for c in doc["crops"]} == {0, 1}  # crops of both people


@pytest.mark.parametrize("source", ["scenes", "preset"])
def test_a_person_who_leaves_is_never_scored_on_the_background(tmp_path, request, source):
    """Issue 10 item 3: a person in frame for 1 s of 2 s (the preset's: walks off from 1.53 s, out
    at ~1.9 s of 2.37 s): no crop after they left is scored."""
    from fakelens.data.synthetic.scenes import person_leaves, write_scene

    if source == "scenes":
        path, _ = write_scene(tmp_path / "leaves.mp4", person_leaves(3, size=SIZE, leaves=1.0))
        leaves = 1.0
    else:  # the original: the preset's face swap of this person is not found by MTCNN (issue notes)
        by_scene, root = request.getfixturevalue("scenes_preset")
        _, path, entry = by_scene["leave"]
        side = json.loads((root / f"{entry['split']}_face_boxes.json").read_text())[entry["original"]]
        leaves = [b is None for b in side["boxes"]].index(True) / side["fps"]  # out of the picture (walked off)
    cfg = CacheConfig(n_frames=20, size=32, detector="mtcnn", max_faces=2)
    pred = _predictor(cfg)
    feats = pred.features(path)
    found = np.asarray(feats.clip.found)
    assert found.shape[0] == 1
    times = np.asarray(feats.clip.times)
    assert found[0, times < leaves - 0.1].mean() >= 0.8 and not found[0, times >= leaves].any()
    p, _ = pred.predict_features("leaves", feats)
    scored = np.isfinite(p.frame_scores)  # every sampled frame on the timeline, NaN where no face was scored
    assert np.array_equal(p.frame_times, times) and p.frame_times[scored].max() < leaves and len(p.faces) == 1
    # the background crops after the person left change nothing
    feats.clip.faces[0, times >= leaves] = 0  # black: the darkest, most "fake" crop for this scorer
    q, _ = pred.predict_features("leaves", feats)
    assert q.score == p.score


@pytest.mark.parametrize("source", ["scenes", "preset"])
def test_a_cut_between_two_people_at_the_same_spot_is_two_tracks(tmp_path, request, source):
    """Issue 10 item 4 on decoded video: a cut from one person to another at the same spot, of the
    same size, in the same studio (the background unchanged; the preset's: a shot cut) gives two
    tracks, each found on its own person's frames only."""
    from fakelens.data.synthetic.scenes import cut_between_people, write_scene
    from fakelens.features.media import compute_features

    if source == "scenes":
        path, _ = write_scene(tmp_path / "cut.mp4", cut_between_people((12, 40), size=SIZE, cut=1.0))
        cut = 1.0
    else:
        path, _, entry = request.getfixturevalue("scenes_preset")[0]["cut"]
        cut = entry["persons"][1]["start"]
    feats = compute_features(path, CacheConfig(n_frames=20, size=32, detector="mtcnn", max_faces=3))
    clip = feats.clip
    times = np.asarray(clip.times)
    assert len(clip.found) == 2, clip.found.sum(axis=1)
    first = int(np.argmin([times[f].mean() for f in clip.found]))
    a, b = clip.found[first], clip.found[1 - first]
    assert not (a & b).any()
    assert a[times < cut].mean() >= 0.8 and not a[times >= cut].any()
    assert b[times >= cut].mean() >= 0.8 and not b[times < cut].any()
