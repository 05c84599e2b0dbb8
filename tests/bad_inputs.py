"""The bad-input corpus: bad or odd files a user will feed fakelens, generated on the fly (nothing
binary is committed), and what every entry point must do with each of them.

Each `Case` writes its input under a folder (`make(root, src)`) from a source of real-looking media
(`Source`: the frames and voice of a synthetic talking head) and lists, per entry point, the
expected outcome: a clear error naming the file and the problem ("error"), a documented fallback
recorded in the output ("fallback"), or a normal result ("ok"), with the phrases the message
must hold. tests/test_bad_inputs.py sends every case through every entry point that takes it;
docs/bad-inputs.md is generated from this list (`python tests/bad_inputs.py --write`), and a
test checks the committed table equals the generated one.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

# Entry points, in table order: the CLI sub-commands and the web API.
ENTRY_POINTS: dict[str, str] = {
    "inspect": "`data inspect`",
    "preprocess": "`preprocess`",
    "features": "`features`",
    "predict": "`predict`",
    "detect": "`detect`",
    "web": "web API",
    "evaluate": "`evaluate`",
    "check": "`submission check`",
}
# Which entry points take each kind of input.
KIND_ENTRIES: dict[str, tuple[str, ...]] = {
    "video": ("inspect", "preprocess", "features", "predict", "detect", "web"),
    "dataset": ("inspect", "preprocess", "features", "predict", "evaluate"),
    "submission": ("evaluate", "check"),
    "checkpoint": ("predict", "detect", "web"),
}
FPS = 25.0
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Expect:
    """What one entry point does with a case. outcome: "error" (a clear error, nothing written),
    "fallback" (a documented fallback, recorded in the output), "ok" (handled as a normal input).
    `says`: phrases the message (error) or the recorded output (fallback) must hold; `status`: the
    CLI exit status or HTTP status; `note`: the table's words for it."""

    outcome: str
    note: str
    says: tuple[str, ...] = ()
    status: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "video" | "dataset" | "submission" | "checkpoint"
    what: str
    make: Callable[[Path, "Source"], Path]
    expect: dict[str, Expect] = field(default_factory=dict)

    @property
    def entries(self) -> tuple[str, ...]:
        return KIND_ENTRIES[self.kind]


@dataclass
class Source:
    """Real-looking media to derive cases from: a synthetic talking head (frames at 25 fps, RGB
    (T, H, W, 3) uint8) and its voice (16 kHz mono float32), plus two whole videos of the tiny set
    (a real and a fake, with their AV-Deepfake1M labels) for datasets."""

    frames: np.ndarray
    audio: np.ndarray
    videos: list[Path]
    entries: list[dict]

    @classmethod
    def from_tiny_set(cls, root: Path) -> "Source":
        from fakelens.io.audio import read_audio
        from fakelens.io.video import iter_frames

        entries = json.loads((root / "test_metadata.json").read_text())
        videos = [root / e["file"] for e in entries]
        real = next(root / e["file"] for e in entries if e["modify_type"] == "real")
        frames = np.stack([rgb for _, rgb in iter_frames(real)])  # (T, 96, 96, 3)
        return cls(frames=frames, audio=read_audio(real, SAMPLE_RATE), videos=videos, entries=entries)

    def loop(self, seconds: float, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
        """Frames at `fps` and audio covering `seconds`, the source played in a loop."""
        n = max(1, int(round(seconds * fps)))
        idx = (np.arange(n) * (FPS / fps)).astype(int) % len(self.frames)
        reps = int(math.ceil(seconds * SAMPLE_RATE / len(self.audio)))
        audio = np.tile(self.audio, reps)[: int(seconds * SAMPLE_RATE)]
        return self.frames[idx], audio


# ----------------------------------------------------------------------------------- media makers


def _write(path: Path, frames, fps: float = FPS, audio=None, **kw) -> Path:
    from fakelens.io.encode import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, list(frames), fps, audio=audio, sample_rate=SAMPLE_RATE, **kw)


def _resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA if h < f.shape[0] else cv2.INTER_LINEAR)
                     for f in frames])


def _canvas(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """The frames scaled to height h and centred on a grey canvas of h x w (a face in a wide shot)."""
    side = min(h, w)
    face = _resize(frames, side, side)
    out = np.full((len(frames), h, w, 3), 96, np.uint8)
    y, x = (h - side) // 2, (w - side) // 2
    out[:, y:y + side, x:x + side] = face
    return out


def video_maker(name: str, build: Callable[[Path, Source], None]) -> Callable[[Path, Source], Path]:
    """A maker writing the case's video as `name` inside a real/ folder (a dataset of one video in
    the real/fake folders layout); returns the video's path."""

    def make(root: Path, src: Source) -> Path:
        path = root / "data" / "real" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, src)
        return path

    return make


def _normal(path: Path, src: Source, seconds: float | None = None, **kw) -> None:
    if seconds is None:
        _write(path, src.frames, audio=src.audio, **kw)
    else:
        frames, audio = src.loop(seconds)
        _write(path, frames, audio=audio, **kw)


def _truncated(path: Path, src: Source) -> None:
    _normal(path, src)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5])


def _audio_only(path: Path, src: Source) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=SAMPLE_RATE)
        s.layout = "mono"
        pts = 0
        for i in range(0, len(src.audio), 1024):
            block = np.ascontiguousarray(src.audio[i:i + 1024])[None]  # (1, n)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, pts
            pts += block.shape[1]
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _ten_minutes(path: Path, src: Source) -> None:
    frames, audio = src.loop(600.0, fps=1.0)  # 600 frames of 96x96 at 1 fps: cheap to write and read
    _write(path, frames, fps=1.0, audio=audio)


def _frames_4k(path: Path, src: Source) -> None:
    frames = _canvas(src.frames[:2], 2160, 3840)
    _write(path, frames, audio=src.audio[: int(2 / FPS * SAMPLE_RATE)])


def _header_8k(path: Path, src: Source) -> None:
    frames = _canvas(src.frames[:1], 4320, 7680)
    _write(path, frames, audio=src.audio[: SAMPLE_RATE // 25])


def _vfr(path: Path, src: Source) -> None:
    rng = np.random.default_rng(0)
    gaps = rng.uniform(0.02, 0.09, len(src.frames))  # 11-50 fps, varying frame to frame
    times = np.round(np.cumsum(gaps) - gaps[0], 3)
    _write(path, src.frames, audio=src.audio, times=times)


def _rotated(path: Path, src: Source) -> None:
    portrait = _canvas(src.frames, 128, 96)  # (T, 128, 96, 3) as displayed
    stored = np.ascontiguousarray(np.rot90(portrait, k=1, axes=(1, 2)))  # turned counter-clockwise
    _write(path, stored, audio=src.audio, rotation=90)  # a player turns it 90 degrees clockwise


def _no_face(path: Path, src: Source, audio: bool = True) -> None:
    rng = np.random.default_rng(1)
    h, w = src.frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(len(src.frames)):  # a drifting gradient with a little noise: no face anywhere
        base = (np.sin(xx / 9.0 + i / 5.0) + np.cos(yy / 13.0)) * 50 + 120
        img = np.stack([base, base * 0.8 + 20, 255 - base], -1) + rng.normal(0, 4, (h, w, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    _write(path, frames, audio=src.audio if audio else None)


def _no_face_no_audio(path: Path, src: Source) -> None:
    _no_face(path, src, audio=False)


def video_case(name: str, what: str, file: str, build: Callable[[Path, Source], None], **expect: Expect) -> Case:
    return Case(name, "video", what, video_maker(file, build), expect)


# ----------------------------------------------------------------------------------- datasets


def _av1m(root: Path, src: Source, edit: Callable[[list[dict]], list[dict]] | None = None,
          text: Callable[[str], str] | None = None) -> Path:
    """An AV-Deepfake1M-layout dataset of the tiny set's two test videos (train split), its
    train_metadata.json edited by `edit` (entries) or `text` (the file's text)."""
    data = root / "data"
    (data / "train").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (v, e) in enumerate(zip(src.videos, src.entries)):
        name = f"{i + 1:06d}.mp4"
        shutil.copy(v, data / "train" / name)
        entries.append({**e, "file": name, "split": "train"})
    if edit is not None:
        entries = edit(entries)
    body = json.dumps(entries, indent=1)
    (data / "train_metadata.json").write_text(text(body) if text else body, encoding="utf-8", newline="")
    return data


def _csv(root: Path, src: Source, rows: list[str] | None = None, text: Callable[[str], str] | None = None) -> Path:
    """A CSV-competition dataset of the two videos: train/ + train_labels.csv (`rows` after the
    header, default the true labels), its text edited by `text`."""
    data = root / "data"
    (data / "train").mkdir(parents=True, exist_ok=True)
    lines = ["video_name,target"]
    for i, (v, e) in enumerate(zip(src.videos, src.entries)):
        shutil.copy(v, data / "train" / f"{i + 1:06d}.mp4")
        lines.append(f"{i + 1:06d}.mp4,{int(e['modify_type'] != 'real')}")
    if rows is not None:
        lines = lines[:1] + rows
    body = "\n".join(lines) + "\n"
    (data / "train_labels.csv").write_text(text(body) if text else body, encoding="utf-8", newline="")
    return data


def _dfdc_duplicates(root: Path, src: Source) -> Path:
    data = root / "data"
    for part in ("dfdc_train_part_0", "dfdc_train_part_1"):
        (data / part).mkdir(parents=True)
        shutil.copy(src.videos[0], data / part / "aaaaaaaaaa.mp4")
        (data / part / "metadata.json").write_text(json.dumps(
            {"aaaaaaaaaa.mp4": {"label": "REAL", "split": "train", "original": None}}))
    return data


def _dfdc_labels(root: Path, src: Source) -> Path:
    data = root / "data" / "dfdc_train_part_0"
    data.mkdir(parents=True)
    shutil.copy(src.videos[0], data / "aaaaaaaaaa.mp4")
    (data / "metadata.json").write_text(json.dumps(
        {"aaaaaaaaaa.mp4": {"label": "SUSPICIOUS", "split": "train", "original": None}}))
    return data.parent


def _missing(entries: list[dict]) -> list[dict]:
    return [*entries, {**entries[0], "file": "000009.mp4"}]


def _segments(seg: list[list[float]]) -> Callable[[list[dict]], list[dict]]:
    def edit(entries: list[dict]) -> list[dict]:
        fake = next(i for i, e in enumerate(entries) if e["modify_type"] != "real")
        entries[fake] = {**entries[fake], "fake_segments": seg, "visual_fake_segments": seg, "audio_fake_segments": []}
        return entries

    return edit


def _bom_crlf(text: str) -> str:
    return "\ufeff" + text.replace("\n", "\r\n")


def dataset_case(name: str, what: str, make: Callable[[Path, Source], Path], **expect: Expect) -> Case:
    return Case(name, "dataset", what, make, expect)


# ----------------------------------------------------------------------------------- submissions


def submission_maker(file: str, text: str) -> Callable[[Path, Source], Path]:
    """A submission file for the AV-1M-layout dataset of the two test videos (000001.mp4 real,
    000002.mp4 fake); the labels are written beside it as data/."""

    def make(root: Path, src: Source) -> Path:
        _av1m(root, src)
        path = root / file
        path.write_text(text, encoding="utf-8", newline="")
        return path

    return make


def submission_case(name: str, what: str, file: str, text: str, **expect: Expect) -> Case:
    return Case(name, "submission", what, submission_maker(file, text), expect)


# ----------------------------------------------------------------------------------- checkpoints


def _ckpt_random(root: Path, src: Source) -> Path:
    path = root / "model.ckpt"
    path.write_bytes(np.random.default_rng(2).bytes(4096))
    return path


def _ckpt_foreign(root: Path, src: Source) -> Path:
    import torch

    path = root / "resnet.ckpt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
    return path


def _ckpt_truncated(root: Path, src: Source, run: Path | None = None) -> Path:
    path = root / "best.ckpt"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(3).bytes(2000))  # a zip cut after its first entry header
    return path


def _ckpt_empty_run(root: Path, src: Source) -> Path:
    path = root / "run"
    (path / "checkpoints").mkdir(parents=True)
    (path / "config.yaml").write_text("model:\n  name: av_tiny\n")
    return path


def checkpoint_case(name: str, what: str, make: Callable[[Path, Source], Path], **expect: Expect) -> Case:
    return Case(name, "checkpoint", what, make, expect)


# ----------------------------------------------------------------------------------- the cases


def error(note: str, *says: str, status: int = 2) -> Expect:
    return Expect("error", note, says, status)


def reported(note: str, *says: str, status: int = 0) -> Expect:
    return Expect("reported", note, says, status)


def fallback(note: str, *says: str, status: int = 0) -> Expect:
    return Expect("fallback", note, says, status)


def ok(note: str = "handled as any video", *says: str, status: int = 0) -> Expect:
    return Expect("ok", note, says, status)


def unreadable(cause: str, web_status: int, web_says: str) -> dict[str, Expect]:
    """What every entry point does with a file that is not a decodable video."""
    return dict(
        inspect=reported(f"listed as unreadable: '{cause}'", cause),
        preprocess=reported(f"status decode_error in the cache index: '{cause}'; the other videos go on (and "
                            "it is retried on the next run)", "decode_error", cause),
        features=reported(f"status decode_error in the features index: '{cause}'; no arrays stored, the other "
                          "videos go on", "decode_error", cause),
        predict=error(f"stops before writing the submission; the video and '{cause}' are listed in "
                      "FILE.failures.json (`--on-error prior`: the training prior, recorded there)",
                      cause, "failures.json"),
        detect=reported("report.json / report.html say 'not analysed' with the cause; the other videos go on",
                        cause, '"status": "failed"', status=1),
        web=error(f"'{web_says}'", web_says, status=web_status),
    )


def playable(detect_note: str = "report as for any video", *detect_says: str, web: Expect | None = None,
             **other: Expect) -> dict[str, Expect]:
    """What every entry point does with an odd video it can decode."""
    out = dict(
        inspect=ok("probed (duration, fps, resolution, audio)", '"ok": 1'),
        preprocess=ok("cached with status ok", '"status": "ok"'),
        features=ok("dense features stored with status ok", '"status": "ok"'),
        predict=ok("scored; in the submission"),
        detect=ok(detect_note, '"status": "ok"', *detect_says),
        web=web or ok("the report", '"status":"ok"', status=200),
    )
    out.update(other)
    return out


def bad_labels(note: str, *says: str, evaluate: Expect | None = None) -> dict[str, Expect]:
    """A dataset the readers refuse: the same clear error from every entry point, before any work."""
    e = error(note, *says)
    return dict(inspect=e, preprocess=e, features=e, predict=e, evaluate=evaluate or e)


def bad_submission(note: str, *says: str, evaluate: Expect | None = None) -> dict[str, Expect]:
    e = error(note, *says)
    return dict(evaluate=evaluate or e, check=e)


def bad_checkpoint(note: str, *says: str) -> dict[str, Expect]:
    e = error(note, *says)
    return dict(predict=e, detect=e, web=error(f"`fakelens serve` refuses to start: {note}", *says))


NO_FACE = "no face found in any sampled frame"
VISUAL_ALONE = "the score rests on the visual stream alone"
AUDIO_ALONE = "the score rests on the audio stream alone"

CASES: list[Case] = [
    video_case("zero_byte", "a zero-byte file named .mp4", "empty.mp4", lambda p, s: p.touch(),
               **unreadable("file is empty (0 bytes)", 422, "the uploaded file is empty")),
    video_case("truncated_mp4", "an H.264/AAC mp4 cut at 40% of its bytes", "cut.mp4", _truncated,
               **unreadable("truncated or corrupt", 422, "corrupt video")),
    video_case("random_bytes", "20 kB of random bytes named .mp4", "noise.mp4",
               lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(20000)),
               **unreadable("not a media file FFmpeg can read", 415, "not a video file")),
    video_case("text_as_mp4", "a text file named .mp4", "notes.mp4",
               lambda p, s: p.write_text("this is not a video\n" * 50),
               **unreadable("not a media file FFmpeg can read", 415, "not a video file")),
    video_case("audio_only", "an mp4 holding only an AAC audio track", "voice.mp4", _audio_only,
               **unreadable("has no video stream", 415, "has no video stream")),
    video_case("no_audio", "a talking-head video without an audio stream", "silent_film.mp4",
               lambda p, s: _write(p, s.frames), **playable(
                   preprocess=reported("cached with status no_audio (faces kept; left out of audio-visual "
                                       "training, counted in left_out.json)", '"status": "no_audio"'),
                   features=reported("status no_audio: visual features stored, the audio array empty (its steps "
                                     "masked when read)", '"status": "no_audio"', "no audio stream: audio features masked"),
                   predict=fallback("scored by the model's visual head alone (modality dropout), recorded: streams "
                                    "'visual only' in --predictions and in FILE.failures.json (one_stream)",
                                    '"streams": "visual only"', '"n_one_stream": 1'),
                   detect=fallback("scored by the visual head alone: the verdict says streams 'visual only' and "
                                   "a warning that a fake voice cannot be seen", '"streams": "visual only"',
                                   VISUAL_ALONE),
                   web=fallback("the report, scored by the visual head alone (streams 'visual only', warned)",
                                '"streams":"visual only"', VISUAL_ALONE, status=200))),
    video_case("one_frame", "a video of a single frame (40 ms of audio)", "still.mp4",
               lambda p, s: _write(p, s.frames[:1], audio=s.audio[: SAMPLE_RATE // 25]),
               **playable("scored; the report warns that the clip was padded, with how many frames are real and "
                          "how many padding (padding not scored)", "short_video", "(1 real, 3 padded)",
                          predict=fallback("scored from its one frame padded to the model's 4-frame clip and its "
                                           "40 ms of audio padded to the model's audio window, both recorded in "
                                           "--predictions: fallback 'padded clip: 1 real frame and 3 padded ...; "
                                           "padded audio: 0.0x s of audio padded with masked silence ...', extras "
                                           "real_frames 1 / padded_frames 3, audio_seconds / audio_window_seconds",
                                           "padded clip: 1 real frame and 3 padded", '"real_frames": 1.0, '
                                           '"padded_frames": 3.0', "s of audio padded with masked silence",
                                           '"audio_window_seconds"'))),
    video_case("three_seconds", "a 3-second video (the source looped)", "short.mp4",
               lambda p, s: _normal(p, s, 3.0), **playable()),
    video_case("ten_minutes", "a 10-minute video (96x96 at 1 fps, 10 min of audio)", "long.mp4", _ten_minutes,
               **playable("scored from its sampled frames; memory stays bounded", '"duration": 600.0')),
    video_case("tiny_32x32", "32x32 frames (a face of a few pixels)", "tiny.mp4",
               lambda p, s: _write(p, _resize(s.frames, 32, 32), audio=s.audio),
               **playable("scored where the face was found; the frames without one are listed", "no_face_frames",
                          features=reported("status no_face with the Haar detector the corpus runs (no face of a few "
                                            "pixels): audio features stored, the visual ones masked",
                                            '"status": "no_face"', "visual features masked"))),
    video_case("frames_4k", "3840x2160 frames (4K UHD, a face in a wide shot; 2 frames, 80 ms of audio)", "uhd.mp4",
               _frames_4k, **playable("faces found on a 640-px copy, cropped from the full frame", predict=fallback(
                   "scored from faces found on a 640-px copy; its 2 frames and 80 ms of audio padded to the model's "
                   "clip and audio window, recorded in --predictions: fallback 'padded clip: 2 real frames and 2 "
                   "padded ...; padded audio: ...'", "padded clip: 2 real frames and 2 padded",
                   "s of audio padded with masked silence"))),
    video_case("header_8k", "one 7680x4320 frame (8K: the header says 8K; 40 ms of audio)", "8k.mp4", _header_8k,
               **playable(predict=fallback("scored from its one frame and 40 ms of audio, padded to the model's clip "
                                           "and audio window, recorded in --predictions: fallback 'padded clip: 1 "
                                           "real frame and 3 padded ...; padded audio: ...'",
                                           "padded clip: 1 real frame and 3 padded",
                                           "s of audio padded with masked silence"),
                          web=error("refused before decoding: 'video is 7680x4320; this server analyses at most "
                                    "4096 px'", "at most 4096 px", status=422))),
    video_case("rotated", "portrait frames stored sideways with a 90-degree display matrix (a phone video)",
               "phone.mp4", _rotated, **playable("decoded upright (display matrix applied)", '"rotation": 90')),
    video_case("vfr", "a variable frame rate (11-50 fps, frame to frame)", "vfr.mkv", _vfr,
               **playable("frames sampled by their own timestamps")),
    video_case("yuv444p", "H.264 High 4:4:4 (yuv444p)", "yuv444.mp4",
               lambda p, s: _normal(p, s, pix_fmt="yuv444p"), **playable()),
    video_case("ten_bit", "10-bit H.264 (yuv420p10le)", "tenbit.mp4",
               lambda p, s: _normal(p, s, pix_fmt="yuv420p10le"), **playable()),
    video_case("unicode_name", "a unicode file name", "vidéo_ü_日本.mp4", _normal,
               **playable("report folder named after the video")),
    video_case("space_name", "spaces and brackets in the file name", "my clip (1).mp4", _normal, **playable()),
    video_case("leading_dash", "a file name starting with '-'", "-clip.mp4", _normal, **playable(
        detect=error("`fakelens detect -clip.mp4` is read as an option: the error says to write ./-clip.mp4 or "
                     "put it after --", "write ./-clip.mp4 or put it after --"))),
    video_case("semicolon_name", "a ';' in the file name (the AV-1M task-1 separator)", "a;b.mp4", _normal,
               **playable(predict=error("the avdf1m-task1 writer refuses the id (';' separates its fields); "
                                        "nothing written", "cannot be written in the avdf1m-task1 format"))),
    video_case("no_face", "a video without any face (moving texture, with audio)", "scenery.mp4", _no_face,
               **playable(
                   preprocess=reported("cached with status no_face (`--full-frame-fallback`: the whole frame, "
                                       "recorded as the fallback)", '"status": "no_face"'),
                   features=reported("status no_face: audio features stored, the visual ones zero and masked "
                                     "(found all false)", '"status": "no_face"', "visual features masked"),
                   predict=fallback("scored by the model's audio head alone (modality dropout), recorded: streams "
                                    "'audio only' in --predictions and in FILE.failures.json (one_stream); "
                                    "`--no-face full_frame` scores the whole frame instead", '"streams": "audio only"',
                                    '"n_one_stream": 1'),
                   detect=fallback("scored by the audio head alone: the verdict says streams 'audio only' and a "
                                   "warning that a fake face cannot be heard", '"streams": "audio only"',
                                   AUDIO_ALONE),
                   web=fallback("the report, scored by the audio head alone (streams 'audio only', warned)",
                                '"streams":"audio only"', AUDIO_ALONE, status=200))),
    video_case("no_face_no_audio", "a video without any face and without an audio stream", "landscape.mp4",
               _no_face_no_audio, **playable(
                   preprocess=reported("cached with status no_face", '"status": "no_face"'),
                   features=reported("status no_face: both streams masked (a localizer trains nothing on it)",
                                     '"status": "no_face"', "visual features masked; no audio stream: audio features masked"),
                   predict=error(f"nothing to score: '{NO_FACE}, and no audio stream' in FILE.failures.json",
                                 NO_FACE, "nothing to score", "failures.json"),
                   detect=reported(f"not analysed: '{NO_FACE}, and no audio stream: nothing to score'", NO_FACE,
                                   "nothing to score", status=1),
                   web=error("the report says there is nothing to score", "nothing to score", status=422))),
    dataset_case("duplicate_ids", "the same file name listed in two DFDC parts", _dfdc_duplicates, **bad_labels(
        "the second listing, with the first one's file and key", "duplicate id 'aaaaaaaaaa.mp4'",
        "dfdc_train_part_0/metadata.json")),
    dataset_case("missing_on_disk", "AV-1M metadata listing a video that is not on disk",
                 lambda r, s: _av1m(r, s, _missing), **bad_labels(
                     "the missing files (first few and the count); `--allow-missing` skips and lists them",
                     "missing on disk", "000009.mp4", "--allow-missing",
                     evaluate=error("labels are read without the videos: the prediction lacks the listed id",
                                    "no prediction", "000009.mp4"))),
    dataset_case("malformed_json", "a metadata JSON cut in the middle",
                 lambda r, s: _av1m(r, s, text=lambda t: t[: len(t) // 2]), **bad_labels(
                     "the file, line and column of the JSON error", "train_metadata.json, line", "malformed JSON")),
    dataset_case("malformed_csv", "a label CSV with an unbalanced quote",
                 lambda r, s: _csv(r, s, ['"000001.mp4,0', "000002.mp4,1"]), **bad_labels(
                     "the file and line of the CSV error", "train_labels.csv, line 3", "malformed CSV")),
    dataset_case("wrong_csv_columns", "a label CSV with columns name,label", lambda r, s: _csv(
        r, s, text=lambda t: t.replace("video_name,target", "name,label")), **bad_labels(
            "no format matches: what each format looks for, and the header the CSV has",
            "matches no known dataset format", "train_labels.csv: starts with 'name,label'")),
    dataset_case("bom_crlf_csv", "a label CSV with a byte-order mark and CRLF line ends",
                 lambda r, s: _csv(r, s, text=_bom_crlf), inspect=ok("read as written", '"csv"'),
                 preprocess=ok("read as written"), features=ok("read as written"), predict=ok("read as written"),
                 evaluate=ok("read as written", "AUC")),
    dataset_case("bom_crlf_json", "AV-1M metadata with a byte-order mark and CRLF line ends",
                 lambda r, s: _av1m(r, s, text=_bom_crlf), inspect=ok("read as written", '"avdeepfake1m"'),
                 preprocess=ok("read as written"), features=ok("read as written"), predict=ok("read as written"),
                 evaluate=ok("read as written", "AUC")),
    dataset_case("unknown_label_dfdc", "a DFDC label other than REAL/FAKE ('SUSPICIOUS')", _dfdc_labels,
                 **bad_labels("the file, the entry and the labels allowed", "metadata.json, key 'aaaaaaaaaa.mp4'",
                              "unknown label 'SUSPICIOUS' (expected REAL or FAKE)")),
    dataset_case("unknown_target_csv", "a CSV target other than 0/1 ('yes')",
                 lambda r, s: _csv(r, s, ["000001.mp4,0", "000002.mp4,yes"]), **bad_labels(
                     "the file, the line and the values allowed", "train_labels.csv, line 3",
                     "unknown target 'yes'")),
    dataset_case("segment_start_after_end", "a fake segment with start >= end ([1.0, 0.5])",
                 lambda r, s: _av1m(r, s, _segments([[1.0, 0.5]])), **bad_labels(
                     "the file, the entry and the segment", "train_metadata.json, entry [0]", "start >= end")),
    dataset_case("segment_past_end", "a fake segment ending after the video ([0.2, 30.0] in a 1.3 s video)",
                 lambda r, s: _av1m(r, s, _segments([[0.2, 30.0]])), **bad_labels(
                     "the file, the entry, the segment and the duration (one frame of tolerance)",
                     "train_metadata.json, entry [0]", "ends beyond the video duration")),
    dataset_case("empty_listing", "a metadata file listing no videos", lambda r, s: _av1m(r, s, lambda e: []),
                 **bad_labels("the file lists no videos", "train_metadata.json", "no videos listed")),
    submission_case("nan_score", "a NaN score", "prediction.txt", "000001.mp4;nan\n000002.mp4;0.9\n",
                    **bad_submission("the file, line and id", "line 1, '000001.mp4'", "finite number in [0, 1]")),
    submission_case("inf_score", "an infinite score", "prediction.txt", "000001.mp4;0.1\n000002.mp4;inf\n",
                    **bad_submission("the file, line and id", "line 2, '000002.mp4'", "finite number in [0, 1]")),
    submission_case("score_out_of_range", "a score above 1", "prediction.txt", "000001.mp4;0.1\n000002.mp4;1.5\n",
                    **bad_submission("the file, line and id", "line 2, '000002.mp4'", "got 1.5")),
    submission_case("negative_score", "a negative score in a CSV submission", "submission.csv",
                    "video_name,score\n000001.mp4,-0.2\n000002.mp4,0.8\n",
                    **bad_submission("the file, line and id", "line 2, '000001.mp4'", "got -0.2")),
    submission_case("empty_proposals", "an empty proposal list for one video", "prediction.json",
                    '{"000001.mp4": [], "000002.mp4": [[0.9, 0.2, 0.7]]}',
                    evaluate=ok("scored as the official scorer does (missed in AP, left out of AR), said in a note",
                                "empty proposal list"),
                    check=error("invalid: the official loader needs at least one proposal per file",
                                "empty proposal list", "'000001.mp4'")),
    submission_case("proposal_start_after_end", "a proposal with start >= end", "prediction.json",
                    '{"000001.mp4": [[0.1, 0.0, 0.5]], "000002.mp4": [[0.9, 0.7, 0.2]]}',
                    **bad_submission("the file, id and row", "'000002.mp4' row 0", "0 <= start < end")),
    submission_case("duplicate_prediction", "the same id twice", "prediction.txt",
                    "000001.mp4;0.1\n000002.mp4;0.9\n000001.mp4;0.2\n",
                    **bad_submission("both lines", "line 3", "'000001.mp4' appears twice (first at line 1)")),
    submission_case("missing_prediction", "a labelled video without a prediction", "prediction.txt",
                    "000002.mp4;0.9\n", evaluate=error("the labelled ids without a prediction", "no prediction",
                                                       "'000001.mp4'"),
                    check=error("the expected ids missing", "expected ids missing", "'000001.mp4'")),
    submission_case("bom_crlf_submission", "a byte-order mark and CRLF line ends", "prediction.txt",
                    "\ufeff000001.mp4;0.1\r\n000002.mp4;0.9\r\n", evaluate=ok("read as written", "AUC"),
                    check=ok("valid", "valid avdf1m-task1 submission")),
    submission_case("malformed_prediction_json", "a prediction.json cut in the middle", "prediction.json",
                    '{"000001.mp4": [[0.1, 0.0, 0.5]], "000002.mp4": [[0.9, 0.',
                    **bad_submission("the line and column of the JSON error", "line 1", "malformed JSON")),
    submission_case("wrong_header", "a DFDC-style CSV whose header is id,prob", "submission.csv",
                    "id,prob\n000001.mp4,0.1\n000002.mp4,0.9\n",
                    **bad_submission("not a known submission format: the first line, and what each format looks like",
                                     "its first line is 'id,prob'")),
    checkpoint_case("checkpoint_random_bytes", "a .ckpt of random bytes", _ckpt_random, **bad_checkpoint(
        "not a PyTorch checkpoint (neither a zip archive nor a pickle)", "not a PyTorch checkpoint")),
    checkpoint_case("checkpoint_foreign", "a PyTorch checkpoint that fakelens did not write", _ckpt_foreign,
                    **bad_checkpoint("not a fakelens checkpoint (no config or weights inside)",
                                     "not a fakelens checkpoint")),
    checkpoint_case("checkpoint_truncated", "a checkpoint cut short (an interrupted copy)", _ckpt_truncated,
                    **bad_checkpoint("a truncated or corrupt zip archive", "truncated or corrupt zip archive")),
    checkpoint_case("run_without_checkpoint", "a run folder whose checkpoints/ is empty", _ckpt_empty_run,
                    **bad_checkpoint("no checkpoints/best.ckpt or checkpoints/last.ckpt", "no checkpoints/best.ckpt")),
]


# ----------------------------------------------------------------------------------- running


@dataclass
class Result:
    """What an entry point did: its exit (or HTTP) status, what it printed, what it recorded
    (failures report, cache index rows, report.json, JSON output), and a traceback if it crashed."""

    status: int | None
    text: str
    record: str = ""
    crash: str | None = None

    @property
    def everything(self) -> str:
        return self.text + "\n" + self.record


def run_cli(argv: list[str], cwd: Path | None = None) -> Result:
    """fakelens.cli.main.main(argv) in this process, stdout and stderr captured; an exception
    escaping it (other than argparse's SystemExit) is a crash, kept with its traceback."""
    import contextlib
    import io
    import os
    import traceback

    from fakelens.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    crash = None
    status: int | None
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as e:  # argparse
                status = int(e.code) if isinstance(e.code, int) else 2
    except Exception:  # noqa: BLE001 - a crash is what the corpus looks for
        status, crash = None, traceback.format_exc()
    finally:
        os.chdir(old)
    return Result(status, out.getvalue() + err.getvalue(), crash=crash)


def _read_all(paths) -> str:
    texts = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            texts.append(p.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def dataset_of(case: Case, path: Path) -> Path:
    """The dataset folder an entry point reads for a case (a video case: the folder of one video)."""
    return path.parent.parent if case.kind == "video" else path


def run_entry(case: Case, entry: str, path: Path, root: Path, run: Path, client=None) -> Result:
    """Send case input `path` (made under `root`) through one entry point with the trained `run`."""
    work = root / f"out-{entry}"
    if case.kind == "checkpoint":
        data = root / "ckpt-data"
        if entry == "predict":
            return run_cli(["predict", str(path), str(data), "--format", "avdf1m-task1", "--out",
                            str(work / "prediction.txt"), "--no-progress"])
        if entry == "detect":
            return run_cli(["detect", str(next(data.rglob("*.mp4"))), "--model", str(path), "--out", str(work),
                            "--no-progress"])
        return run_cli(["serve", "--model", str(path), "--port", "1"])  # fails before binding
    if entry == "inspect":
        return run_cli(["data", "inspect", str(dataset_of(case, path)), "--json"])
    if entry == "preprocess":
        res = run_cli(["preprocess", str(dataset_of(case, path)), "--out", str(work), "--frames", "6", "--size",
                       "32", "--no-progress", "--json"])
        res.record = _read_all([work / "index.jsonl", *sorted((work / "rows").glob("*.json"))])
        return res
    if entry == "features":
        # Haar: the corpus is about reading the inputs; MTCNN's tracking of every frame of the
        # 10-minute video alone would take minutes
        res = run_cli(["features", "tinycnn", str(dataset_of(case, path)), "--out", str(work), "--size", "32",
                       "--detector", "haar", "--no-progress", "--json"])
        res.record = _read_all([work / "index.jsonl", *sorted((work / "rows").glob("*.json"))])
        return res
    if entry == "predict":
        out = work / "prediction.txt"
        res = run_cli(["predict", str(run), str(dataset_of(case, path)), "--format", "avdf1m-task1", "--out",
                       str(out), "--predictions", str(work / "predictions.json"), "--no-progress"])
        res.record = _read_all([out.with_name(out.name + ".failures.json"), work / "predictions.json", out])
        return res
    if entry == "detect":
        # as a user types it, from the video's folder: the bare file name
        res = run_cli(["detect", path.name, "--model", str(run), "--out", str(work), "--no-progress"], cwd=path.parent)
        res.record = _read_all(sorted(work.rglob("report.json")))
        return res
    if entry == "web":
        with open(path, "rb") as f:
            r = client.post("/api/detect", files={"file": (path.name, f, "video/mp4")})
        return Result(r.status_code, r.text)
    if entry == "evaluate":
        if case.kind == "submission":
            return run_cli(["evaluate", str(path), "--labels", str(root / "data")])
        pred = root / "valid_prediction.txt"
        pred.write_text("".join(f"{i};0.5\n" for i in ("000001.mp4", "000002.mp4", "aaaaaaaaaa.mp4")))
        return run_cli(["evaluate", str(pred), "--labels", str(path)])
    if entry == "check":
        return run_cli(["submission", "check", str(path), "--expect", str(root / "data")])
    raise KeyError(entry)


def make_case(case: Case, root: Path, src: Source) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = case.make(root, src)
    if case.kind == "checkpoint":
        _av1m(root / "ckpt-root", src)
        shutil.move(str(root / "ckpt-root" / "data"), str(root / "ckpt-data"))
    return path


# ----------------------------------------------------------------------------------- the table

KIND_TITLES = {"video": "Videos", "dataset": "Datasets and label files", "submission": "Submission files",
               "checkpoint": "Models"}
OUTCOMES = {
    "error": "a clear error naming the file and the problem; nothing is written",
    "reported": "the job goes on; the file is listed with its problem in the output (the exit status says so)",
    "fallback": "a documented fallback, recorded in the output",
    "ok": "handled as a normal input",
}


def _cell(entry: str, e: Expect) -> str:
    status = "" if e.status is None else (f" (HTTP {e.status})" if entry == "web" and e.status >= 100
                                          else f" (exit {e.status})")
    return f"**{e.outcome}**{status}: {e.note}".replace("|", "\\|")


def render_table(cases: list[Case] = CASES) -> str:
    """docs/bad-inputs.md, generated from the case list."""
    lines = [
        "# Bad and odd inputs",
        "",
        "What every entry point does with the inputs users really feed it. Generated from the case list in",
        "`tests/bad_inputs.py` (`python tests/bad_inputs.py --write`); `tests/test_bad_inputs.py` sends each case",
        "through each entry point (the CLI in-process, the web API through FastAPI's TestClient, with a small",
        "audio-visual model trained from scratch on the synthetic tiny set), checks the outcome below, the",
        "phrases the message must hold and that no traceback escapes, and checks that this file is current.",
        "Every input is generated by the test itself (nothing binary is committed).",
        "",
        "Outcomes:",
        "",
        *[f"- **{k}**: {v}" for k, v in OUTCOMES.items()],
        "",
        "The web API is `POST /api/detect` (`fakelens serve`); for models it is `fakelens serve --model`.",
        "",
    ]
    for kind, title in KIND_TITLES.items():
        group = [c for c in cases if c.kind == kind]
        entries = KIND_ENTRIES[kind]
        lines += [f"## {title} ({len(group)})", "",
                  "| case | input | " + " | ".join(ENTRY_POINTS[e] for e in entries) + " |",
                  "|" + "---|" * (2 + len(entries))]
        for c in group:
            cells = [f"`{c.name}`", c.what.replace("|", "\\|")] + [_cell(e, c.expect[e]) for e in entries]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"

if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/bad_inputs.py --write   (regenerates docs/bad-inputs.md)")
    DOC.write_text(render_table() + "\n", encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)")
