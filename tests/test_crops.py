"""Clip windows of consecutive frames and the crop modes (tracked, roi) of the one media -> features path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakelens.errors import ConfigError
from fakelens.features.crops import CROP_MODES, enclosing_boxes, window_frame_indices, window_spans
from fakelens.features.media import MediaConfig, compute_features

MARK = 24  # side of the bright square "face" in the test videos


class MarkerDetector:
    """A face detector for tests: the bounding box of the bright (green > 200) pixels, exact."""

    name = "marker"

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for f in frames:
            ys, xs = np.nonzero(f[..., 1] > 200)
            out.append(np.zeros((0, 5), np.float32) if len(xs) == 0 else
                       np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 1.0]], np.float32))
        return out

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return self.detect(frame[None])[0]


def _marker_position(i: int) -> tuple[int, int]:
    """Top-left (x, y) of the marker on frame i: it drifts right and down, 2 px and 1 px per frame."""
    return 40 + 2 * i, 30 + i


def _marker_video(make_video, tmp_path, n_frames=40, fps=25.0, size=(160, 224), name="m.mkv",
                  position=_marker_position, times=None):
    """Frames with a static background texture (so a still crop region shows) and a moving bright
    square at `position(i)` with a dot at its centre whose red channel is 5 x the frame number
    (frame identity); `times`: each frame's presentation time (a variable frame rate)."""
    from fakelens.io.encode import write_video

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([(xx * 3) % 120, (yy * 5) % 120, ((xx + yy) * 2) % 120], axis=-1).astype(np.uint8)
    frames = []
    for i in range(n_frames):
        img = background.copy()  # (H, W, 3)
        x, y = position(i)
        img[max(0, y):max(0, y + MARK), max(0, x):max(0, x + MARK)] = (255, 255, 90)
        c = MARK // 2
        # frame identity in a 3-px dot at the centre only, so the "face" keeps its look over time
        # (the tracker links faces by appearance too)
        img[max(0, y + c - 1):max(0, y + c + 2), max(0, x + c - 1):max(0, x + c + 2), 0] = (i * 5) % 256
        frames.append(img)
    return write_video(tmp_path / name, frames, fps, codec="ffv1", times=times)


class PastEdgeDetector(MarkerDetector):
    """The marker's box grown by `grow` px on every side, as a detector's box of a face at the
    frame's edge reaches past it (MTCNN gives negative coordinates there)."""

    def __init__(self, grow: float = 12.0):
        self.grow = grow

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        out = super().detect(frames)
        for d in out:
            d[:, :2] -= self.grow
            d[:, 2:4] += self.grow
        return out


# --------------------------------------------------------------------------- arrays


def test_window_frame_indices():
    idx = window_frame_indices(100, 16, 4)
    assert idx.shape == (4, 16)
    assert idx[0, 0] == 0 and idx[-1, -1] == 99  # from the first frame to the last full window
    assert np.all(np.diff(idx, axis=1) == 1)  # consecutive frames in each window
    assert window_frame_indices(10, 16, 4).tolist() == [list(range(10))]  # shorter than one window
    assert window_frame_indices(18, 16, 4).shape == (3, 16)  # starts 0, 1, 2: duplicates dropped
    assert window_frame_indices(100, 16, 1).tolist() == [list(range(42, 58))]  # one window: the middle
    assert window_frame_indices(0, 16, 4).shape == (0, 16)
    assert window_spans(40, 16).tolist() == [[0, 16], [16, 32], [32, 40]]


def test_roi_boxes_contain_every_tracked_box_of_their_window():
    rng = np.random.default_rng(0)
    f, t, w = 2, 37, 8
    xy = rng.uniform(0, 500, (f, t, 2)).cumsum(axis=1) / 10  # drifting faces
    wh = rng.uniform(20, 80, (f, t, 2))
    boxes = np.concatenate([xy, xy + wh], axis=-1).astype(np.float32)  # (F, T, 4)
    spans = window_spans(t, w)
    roi = CROP_MODES.get("roi")(boxes, spans)
    assert CROP_MODES.get("tracked")(boxes, spans) is None
    for a, b in spans:
        region = roi[:, a:b]
        assert np.all(region == region[:, :1])  # one box per track and window
        inside = ((region[..., :2] <= boxes[:, a:b, :2]) & (region[..., 2:] >= boxes[:, a:b, 2:])).all()
        assert inside
        # and the smallest such box: each side touches some tracked box of the window
        assert np.allclose(region[:, 0, :2], boxes[:, a:b, :2].min(axis=1))
        assert np.allclose(region[:, 0, 2:], boxes[:, a:b, 2:].max(axis=1))
    assert enclosing_boxes(boxes[:, :0], window_spans(0, w)).shape == (f, 0, 4)


def test_roi_boxes_are_clipped_to_the_frame_and_cut_square_with_margin():
    """Boxes reaching past the frame's edges: the ROI box is the enclosing box of their parts
    inside the frame (nothing to see outside it), within the frame; the crop cut around it is a
    square of margin x its longer side that holds every box of the window with that margin."""
    w, h, t, win, margin = 320, 180, 24, 8, 1.3
    rng = np.random.default_rng(1)
    x = np.linspace(-30, 290, t)[None, :, None] + rng.uniform(-5, 5, (2, t, 1))  # (2, T, 1): crossing the frame
    y = np.array([[-20.0], [140.0]])[:, None, :] + rng.uniform(-5, 5, (2, t, 1))  # top edge / bottom edge
    boxes = np.concatenate([x, y, x + 60, y + 60], axis=-1).astype(np.float32)  # (2, T, 4)
    spans = window_spans(t, win)
    roi = CROP_MODES.get("roi")(boxes, spans, (w, h))
    unclipped = CROP_MODES.get("roi")(boxes, spans, None)
    assert (unclipped[..., :2] < 0).any() and (unclipped[..., 2:] > [w, h]).any()  # the case is tested
    assert (roi[..., :2] >= 0).all() and (roi[..., 2:] <= [w, h]).all()
    visible = np.clip(boxes, 0, np.array([w, h, w, h], np.float32))  # (2, T, 4) the boxes' parts in the frame
    for a, b in spans:
        region = roi[:, a:b]
        assert np.all(region == region[:, :1])
        assert (region[..., :2] <= visible[:, a:b, :2]).all() and (region[..., 2:] >= visible[:, a:b, 2:]).all()
        assert np.allclose(region[:, 0, :2], visible[:, a:b, :2].min(axis=1))  # the smallest such box
        assert np.allclose(region[:, 0, 2:], visible[:, a:b, 2:].max(axis=1))
        # the square cut around it (faces.extract.crop_square): side margin x the longer side, centred
        side = margin * (region[:, 0, 2:] - region[:, 0, :2]).max(axis=1)  # (2,)
        centre = (region[:, 0, :2] + region[:, 0, 2:]) / 2  # (2, 2)
        lo, hi = centre - side[:, None] / 2, centre + side[:, None] / 2
        room = (side / margin) * (margin - 1) / 2  # the margin around the enclosing box's longer side
        assert (visible[:, a:b, :2] >= lo[:, None] + room[:, None, None] - 1e-3).all()
        assert (visible[:, a:b, 2:] <= hi[:, None] - room[:, None, None] + 1e-3).all()


def test_roi_crops_hold_a_face_at_the_frames_edge(make_video, tmp_path):
    """Through the media path, a face moving off the frame's left edge with boxes reaching past
    it: the ROI box stays inside the frame, every crop of a window is cut from the same square
    region, and the whole visible face is in each of them."""
    path = _marker_video(make_video, tmp_path, n_frames=32, size=(120, 160), name="edge.mkv",
                         position=lambda i: (30 - 2 * i, 50))  # from x = 30 to x = -32: leaves the frame
    cfg = MediaConfig(sampling="windows", n_windows=2, window_frames=12, size=48, margin=1.2, crop="roi",
                      detect_max_side=None, detect_every=1)
    clip = compute_features(path, cfg, detector=PastEdgeDetector()).clip
    assert clip.faces.shape[1] == 24 and (clip.boxes[0, :, 0] < 0).any()  # the detector's boxes reach past x = 0
    for a, b in window_spans(24, 12):
        region = clip.crop_boxes[0, a:b]
        assert np.all(region == region[0]) and region[0, 0] == 0 and (region[0, 2:] <= [160, 120]).all()
        assert (region[:, 2:] >= np.clip(clip.boxes[0, a:b, 2:], 0, [160, 120]) - 1e-3).all()
        frame = clip.indices[a:b]  # (12,)
        crops = clip.faces[0, a:b]  # (12, 48, 48, 3)
        marker = crops[..., 1] > 200  # (12, 48, 48)
        scale = 48 / (1.2 * (region[0, 2:] - region[0, :2]).max())  # crop pixels per frame pixel
        visible = np.array([MARK * max(0, min(MARK, 30 - 2 * int(i) + MARK)) for i in frame])  # marker px in frame
        area = marker.sum(axis=(1, 2)) / scale ** 2
        assert np.allclose(area, visible, rtol=0.2, atol=40), (area, visible)


def test_media_config_checks_the_crop_and_window_parameters():
    assert MediaConfig(sampling="windows", crop="roi").window_frames == 16
    with pytest.raises(ConfigError, match="needs sampling 'windows'"):
        MediaConfig(crop="roi")
    with pytest.raises(ConfigError, match="crop must be one of"):
        MediaConfig(sampling="windows", crop="fixed")
    with pytest.raises(ConfigError, match="n_windows and window_frames"):
        MediaConfig(sampling="windows", window_frames=0)


# --------------------------------------------------------------------------- through the media path


@pytest.mark.parametrize("fps", [25.0, 29.97])
def test_windows_are_consecutive_frames_at_the_videos_own_rate(make_video, tmp_path, fps):
    path = _marker_video(make_video, tmp_path, n_frames=40, fps=fps)
    cfg = MediaConfig(sampling="windows", n_windows=3, window_frames=8, size=32, crop="tracked",
                      detect_max_side=None, detect_every=1)
    feats = compute_features(path, cfg, detector=MarkerDetector())
    clip = feats.clip
    assert clip.faces.shape == (1, 24, 32, 32, 3) and clip.crop_boxes is None
    idx = clip.indices.reshape(3, 8)
    assert idx[0, 0] == 0 and idx[-1, -1] == 39
    assert np.all(np.diff(idx, axis=1) == 1)  # consecutive frames in each window
    assert np.allclose(np.diff(clip.times.reshape(3, 8), axis=1), 1 / fps, atol=1e-3)  # the video's spacing
    # the decoded frames are those frames: the marker at the centre of each crop carries its number
    dot = clip.faces[0, :, 10:22, 10:22, 0].reshape(24, -1).min(axis=1).astype(int)  # (T,) the darkest red there
    assert np.abs(dot - 5 * idx.reshape(-1)).max() <= 2


def test_windows_of_a_variable_frame_rate_video_are_its_consecutive_frames(make_video, tmp_path):
    """VFR (a phone's recording: frame gaps of 20 to 60 ms): a window is consecutive frames of the
    stream at their own presentation times, each decoded once, not a resampling at a nominal rate."""
    gaps = np.tile([0.04, 0.02, 0.06, 0.033], 12)[:47]  # (47,)
    times = np.concatenate([[0.0], np.cumsum(gaps)])  # (48,) seconds
    path = _marker_video(make_video, tmp_path, n_frames=48, fps=30.0, name="vfr.mkv", times=times)
    cfg = MediaConfig(sampling="windows", n_windows=3, window_frames=10, size=64, crop="roi",
                      detect_max_side=None, detect_every=1)
    clip = compute_features(path, cfg, detector=MarkerDetector()).clip
    idx = clip.indices.reshape(3, 10)
    assert np.all(np.diff(idx, axis=1) == 1) and idx[0, 0] == 0 and idx[-1, -1] == 47
    assert np.allclose(clip.times, times[clip.indices], atol=1.5e-3)  # their own times (mkv: 1 ms clock)
    assert not np.allclose(np.diff(clip.times.reshape(3, 10), axis=1), 1 / 30, atol=5e-3)  # not a nominal grid
    # the decoded frames are those frames (the marker's red channel carries the frame number)
    for k, (a, b) in enumerate(window_spans(30, 10)):
        red = np.array([c[..., 0][c[..., 1] > 250].min() for c in clip.faces[0, a:b]])  # (10,) the dot in the marker core
        assert np.abs(red - 5 * idx[k]).max() <= 2


def test_roi_cache_bytes_per_video_are_bounded(make_video, tmp_path):
    """The cache holds n_windows x window_frames crops per video whatever its length: a 12 s video
    takes no more bytes than a 2.4 s one (same region sizes), and no more than its raw crops."""
    from fakelens.data.cache import preprocess, read_index
    from fakelens.types import Label, VideoRecord

    still = lambda i: (60, 40)  # noqa: E731  one still face, the same crops in both
    short = _marker_video(make_video, tmp_path, n_frames=60, name="short.mkv", position=still)
    long = _marker_video(make_video, tmp_path, n_frames=300, name="long.mkv", position=still)
    recs = [VideoRecord(id=p.stem, path=p, label=Label.REAL, split="train") for p in (short, long)]
    cfg = MediaConfig(sampling="windows", n_windows=2, window_frames=16, size=64, crop="roi",
                      detector="full_frame", detect_max_side=None)
    out = tmp_path / "cache"
    preprocess(recs, out, cfg, progress=False)
    rows = {r["id"]: r for r in read_index(out)}
    size = {k: (out / rows[k]["npz"]).stat().st_size for k in rows}
    raw = 2 * 16 * 64 * 64 * 3  # bytes of the uint8 crops of one video
    assert size["long"] <= 1.1 * size["short"] + 4096, size
    assert size["long"] <= raw, (size, raw)


def test_roi_crops_stand_still_and_hold_the_face_of_every_frame(make_video, tmp_path):
    path = _marker_video(make_video, tmp_path, n_frames=40)
    common = dict(sampling="windows", n_windows=2, window_frames=16, size=64, margin=1.2,
                  detect_max_side=None, detect_every=1)
    roi = compute_features(path, MediaConfig(**common, crop="roi"), detector=MarkerDetector()).clip
    tracked = compute_features(path, MediaConfig(**common, crop="tracked"), detector=MarkerDetector()).clip
    assert np.array_equal(roi.boxes, tracked.boxes)  # the tracked face boxes are kept as they are
    spans = window_spans(roi.faces.shape[1], 16)
    for a, b in spans:
        region = roi.crop_boxes[0, a:b]
        assert np.all(region == region[0])
        assert (region[:, :2] <= roi.boxes[0, a:b, :2] + 1e-3).all()
        assert (region[:, 2:] >= roi.boxes[0, a:b, 2:] - 1e-3).all()
        crops = roi.faces[0, a:b].astype(np.int16)  # (16, 64, 64, 3)
        marker = crops[..., 1] > 200  # (16, 64, 64)
        # the whole face is inside every crop of the window: the same marker area in each
        area = marker.sum(axis=(1, 2))
        assert area.min() > 0 and area.max() - area.min() <= 0.15 * area.max()
        # the region stands still: away from the marker, the background is the same in every frame
        still = ~marker.any(axis=0)
        diff = np.abs(crops[1:] - crops[:1])[:, still]
        assert np.median(diff) <= 2
        # ... and the face moves inside it (its centre follows the marker's drift)
        cx = np.array([np.nonzero(m)[1].mean() for m in marker]) / 64  # (16,) in crop widths
        roi_drift = cx[-1] - cx[0]
        assert roi_drift > 0.3  # the marker crosses a third of the still region or more
        # a tracked crop moves with the face instead (the face stays near the middle; the tracker's
        # smoothing lags at the window's ends, so not exactly)
        moving = tracked.faces[0, a:b]
        cx = np.array([np.nonzero(m)[1].mean() for m in moving[..., 1] > 200]) / 64
        assert abs(cx[-1] - cx[0]) < 0.5 * roi_drift


def test_preprocess_roi_windows_into_the_cache(make_video, tmp_path):
    from fakelens.data.cache import load_config, load_npz, preprocess, read_index
    from fakelens.types import Label, VideoRecord

    short = _marker_video(make_video, tmp_path, n_frames=12, name="short.mkv")  # shorter than a window
    long = _marker_video(make_video, tmp_path, n_frames=60, name="long.mkv")
    recs = [VideoRecord(id="short", path=short, label=Label.REAL, split="train"),
            VideoRecord(id="long", path=long, label=Label.FAKE, split="train")]
    cfg = MediaConfig(sampling="windows", n_windows=3, window_frames=16, size=32, crop="roi",
                      detector="full_frame", detect_max_side=None)
    out = tmp_path / "cache"
    preprocess(recs, out, cfg, progress=False)
    assert load_config(out) == cfg
    assert json.loads((out / "config.json").read_text())["crop"] == "roi"
    rows = {r["id"]: r for r in read_index(out)}
    assert rows["short"]["status"] in ("ok", "no_audio") and rows["long"]["has_face"]
    z = load_npz(out, rows["long"], ("faces", "crop_boxes", "boxes", "indices"))
    assert z["faces"].shape[1] == 48 and z["crop_boxes"].shape == (1, 48, 4)
    assert np.all(np.diff(z["indices"].reshape(3, 16), axis=1) == 1)
    zs = load_npz(out, rows["short"], ("faces", "indices"))
    assert zs["faces"].shape[1] == 12 and zs["indices"].tolist() == list(range(12))

    # Training clips lie inside one window: consecutive frames, never across two windows.
    import torch

    from fakelens.data.dataset import ClipDataset

    torch.manual_seed(0)
    ds = ClipDataset(out, "train", clip_frames=8)
    v = [r["id"] for r in ds.rows].index("long")
    starts = set()
    for _ in range(40):
        item = ds[v]
        frame = np.round(item["times"][0].numpy() * 25.0).astype(int)  # (8,) video frame numbers of face 0
        assert np.all(np.diff(frame) == 1), frame
        starts.add(int(frame[0]))
    assert len(starts) > 3  # random starts, in more than one window
    # predict and validation cut whole windows (tile_clips): 48 frames -> 6 clips, 2 per window
    assert ds.n_tiles(v) == 6
    z = ds._load(v)
    for k in range(6):
        assert np.all(np.diff(ds.tile(v, k, z)["times"].numpy()) > 0)
    centre = ClipDataset(out, "train", clip_frames=16, random=False)[v]
    assert np.all(np.diff(np.round(centre["times"][0].numpy() * 25.0)) == 1)
    short = ClipDataset(out, "train", clip_frames=16, random=False)[[r["id"] for r in ds.rows].index("short")]
    assert short["mask"].sum() == 12  # a short video's one window, padded
    with pytest.raises(ConfigError, match="must divide the cache's clip windows of 16"):
        ClipDataset(out, "train", clip_frames=12)


@pytest.mark.slow
def test_cli_preprocess_roi_windows_on_the_synthetic_set(tiny_synth, tmp_path, capsys):
    from fakelens.cli.main import main
    from fakelens.data.cache import load_npz, read_index

    out = tmp_path / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), "--crop", "roi", "--no-progress"]) == 2
    assert "needs sampling 'windows'" in capsys.readouterr().err
    assert main(["preprocess", str(tiny_synth), "--out", str(out), "--windows", "2", "--window-frames", "8",
                 "--crop", "roi", "--detector", "haar", "--size", "48", "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["sampling"], cfg["n_windows"], cfg["window_frames"], cfg["crop"]) == ("windows", 2, 8, "roi")
    rows = [r for r in read_index(out) if r["has_face"]]
    assert rows
    for row in rows:
        z = load_npz(out, row, ("faces", "crop_boxes", "boxes", "indices", "fps"))
        assert z["faces"].shape[1:] == (16, 48, 48, 3)
        idx = z["indices"].reshape(2, 8)
        assert np.all(np.diff(idx, axis=1) == 1)
        for a in (0, 8):
            region, boxes = z["crop_boxes"][0, a:a + 8], z["boxes"][0, a:a + 8]
            assert np.all(region == region[0])
            assert (region[:, :2] <= boxes[:, :2] + 1e-3).all() and (region[:, 2:] >= boxes[:, 2:] - 1e-3).all()


def test_roi_regions_hold_a_fast_moving_face_on_every_frame_of_its_window():
    """The generator's true face boxes (the sidecar's, leave_frame preset: a person walking out of
    the picture) as detections on every frame of 3 windows of 16 frames, tracked with the default
    smoothing and planned as roi crops: the cut square (margin x the region's longer side, centred)
    holds the visible part of the true face on every frame. With the region enclosing smoothed
    boxes whose Gaussian lagged at the window's edges, up to 49.5% of the face fell outside."""
    from fakelens.data.synthetic import plan_videos, preset
    from fakelens.data.synthetic.motion import face_boxes
    from fakelens.faces.extract import FaceTracks
    from fakelens.faces.tracking import track_faces
    from fakelens.features.media import plan_crops

    cfg = MediaConfig(sampling="windows", n_windows=3, window_frames=16, crop="roi", margin=1.3)
    worst, moved = 0.0, 0.0
    for plan in plan_videos(preset("leave_frame", n_videos=3)):
        src = plan.source
        h, w = src.size
        idx = window_frame_indices(src.n_frames, cfg.window_frames, cfg.n_windows).reshape(-1)  # (T,)
        truth = face_boxes(src)[idx]  # (T, 4), NaN where no face is in the picture
        seen = np.isfinite(truth).all(axis=1)  # (T,)
        dets = [np.concatenate([b, [0.99]])[None].astype(np.float32) if ok else np.zeros((0, 5), np.float32)
                for b, ok in zip(truth, seen)]
        times = idx / src.fps  # (T,) seconds
        ts = track_faces(dets, times, smooth_seconds=0.1)
        tracks = FaceTracks(times=times, indices=idx, boxes=ts.boxes, found=ts.found, status="ok", size=64,
                            margin=cfg.margin, width=w, height=h, raw_boxes=ts.raw)
        plan_crops(tracks, cfg)
        for j in np.flatnonzero(seen & ts.found[0]):
            x1, y1, x2, y2 = tracks.crop_boxes[0, j]
            cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, cfg.margin * max(x2 - x1, y2 - y1)
            g = truth[j]
            ix = max(0.0, min(g[2], cx + side / 2) - max(g[0], cx - side / 2))
            iy = max(0.0, min(g[3], cy + side / 2) - max(g[1], cy - side / 2))
            worst = max(worst, 1 - ix * iy / ((g[2] - g[0]) * (g[3] - g[1])))
        shift = np.abs(np.diff(truth[seen][:, 0]))
        moved = max(moved, float(shift[shift < 200].max()))  # px per frame inside a window
    assert moved > 10  # a fast-moving face, as the test means
    assert worst < 1e-6, worst
