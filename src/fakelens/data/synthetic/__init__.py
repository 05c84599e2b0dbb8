"""Synthetic audio-visual deepfakes: talking-head videos with voice, some faked in time segments.

Why: the demo and the test suite need labelled deepfake data without downloading anything. The
faces are real photos that ship with scikit-image (`astronaut()` is the main identity, the first
100 faces of `lfw_subset()` upsampled and tinted are the others); the voice is a formant
synthesizer. A fake video re-renders a real one (same speaker, motion, background, words) and
manipulates it only inside its fake segments:

- visual: the face is replaced inside a soft ellipse within the face box (`face_swap`: another
  identity; `face_reenact`: the same face warped), with the artifacts of real face swaps:
  resampling blur, missing camera grain, colour mismatch and flicker, a blending seam;
- audio: the voice is replaced in the segment (`voice_swap`: another speaker saying other
  words; `pitch_shift`: the same words at another pitch and vocal-tract length), with a
  vocoder-like band limit, flattened intonation, weaker room noise, a loudness step and, at high
  strength, a splice without crossfade;
- both: the two at once, on the same segments, the fake face lip-synced to the fake voice.

Everything is seeded: the same config gives identical metadata and identical frames before
encoding, whatever the number of workers (each video's seeds derive from (seed, index)).

Output (`layout="avdeepfake1m"`, the AV-Deepfake1M metadata format, fps 25, 16 kHz audio)::

    OUT/train/000001.mp4 ...            h264 + AAC; also OUT/val/, OUT/test/
    OUT/{split}_metadata.json           [{"file": "train/000001.mp4" (relative to OUT),
                                          "original": "train/000004.mp4" | null,
                                          "split": "train", "modify_type": "real" |
                                          "visual_modified" | "audio_modified" | "both_modified",
                                          "audio_model": "synthetic_voice_swap" | "",
                                          "fake_segments": [[start_s, end_s], ...] (union),
                                          "visual_fake_segments": [...], "audio_fake_segments": [...],
                                          "video_frames": 88, "audio_frames": 56320}, ...]
    OUT/{split}_face_boxes.json         {"train/000001.mp4": {"fps": 25, "boxes":
                                          [[x1, y1, x2, y2], ...]}}: one box per frame, pixels
                                          of the encoded frame, the tight face box as MTCNN
                                          draws it (forehead to chin, cheek to cheek)
    OUT/synthetic.json                  manifest: config, per-video details, written last

`audio_frames` is the number of audio samples at 16 kHz, as in AV-Deepfake1M (its loader
resamples to `frames / fps * 16000` samples); it is the length of the synthesized track, which
is exactly `video_frames * 640`. Fakes derive from a real video of the same split (`original`),
so a split by original never leaks. All three splits carry labels (the demo scores `test`).

`layout="dfdc"`, `"lavdf"` and `"csv"` write the same videos as DFDC, LAV-DF and the multimedia
deepfake competition ship (see `fakelens.data.synthetic.layouts`); the face-box sidecars are the
same in every layout (keys relative to OUT).

Re-running: a directory holding a complete output (its manifest) is refused unless `overwrite`;
an interrupted run (marker `.synthetic_pending.json`) with the same config resumes, skipping the
videos already written (each mp4 is written atomically, so an existing one is complete).

Modules: `config` (SynthConfig), `presets`, `plan` (every video decided from the seed), `sprites`
(people), `motion` (pose, face boxes, background, light), `voice`, `manipulations` (the fakes, by
name), `render` (plan -> frames and audio), `layouts` (label files per layout), `writer`
(`generate`: workers, resume, manifest). The public names are re-exported here.
"""

from fakelens.data.synthetic.config import SPLITS, SynthConfig
from fakelens.data.synthetic.layouts import MANIFEST
from fakelens.data.synthetic.manipulations import (
    AUDIO_MANIPULATIONS,
    VISUAL_MANIPULATIONS,
    face_reenact,
    face_swap,
    pitch_shift,
    voice_swap,
)
from fakelens.data.synthetic.motion import Motion, face_boxes
from fakelens.data.synthetic.plan import FakePlan, SourcePlan, VideoPlan, plan_videos, segment_frames
from fakelens.data.synthetic.presets import PRESETS, preset
from fakelens.data.synthetic.render import RenderedVideo, render_video
from fakelens.data.synthetic.sprites import Sprite
from fakelens.data.synthetic.voice import Speaker, Syllable, synthesize_voice
from fakelens.data.synthetic.writer import PENDING, GenerateResult, generate, generate_dataset, summarize
from fakelens.types import Modality, Segment

__all__ = [
    "AUDIO_MANIPULATIONS", "MANIFEST", "PENDING", "PRESETS", "SPLITS", "VISUAL_MANIPULATIONS", "FakePlan",
    "GenerateResult", "Modality", "Motion", "RenderedVideo", "Segment", "SourcePlan", "Speaker", "Sprite",
    "SynthConfig", "Syllable", "VideoPlan", "face_boxes", "face_reenact", "face_swap", "generate",
    "generate_dataset", "pitch_shift", "plan_videos", "preset", "render_video", "segment_frames", "summarize",
    "synthesize_voice", "voice_swap",
]
