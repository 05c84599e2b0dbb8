"""Dataset format readers: every registered format on its fixture, single label files, and bad input
(each a FormatError naming the file, the row/entry and the problem).

Fixtures live in tests/data/formats/ (see its README: videos are empty placeholders, readers only
check existence); bad cases are copies edited in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakelens.data.formats import FORMATS, Dataset, detect_format, load_dataset
from fakelens.errors import FormatError
from fakelens.registry import UnknownNameError
from fakelens.types import Label, Modality, Segment

FIXTURES = Path(__file__).parent / "data" / "formats"

# format -> (fixture folder, {split: (real, fake, unknown)}, number of expected test ids or None)
EXPECTED = {
    "dfdc": ("dfdc", {"train": (2, 3, 0)}, None),
    "avdeepfake1m": ("avdeepfake1m", {"train": (1, 2, 0), "val": (1, 1, 0), "test": (0, 0, 2)}, 2),
    "lavdf": ("lavdf", {"train": (1, 1, 0), "val": (0, 1, 0), "test": (0, 1, 0)}, None),  # dev read as val
    "csv": ("csv", {"train": (1, 2, 0), "val": (1, 1, 0), "test": (0, 0, 2)}, 2),
    "folders": ("folders", {"train": (2, 2, 0), "val": (1, 1, 0)}, None),
}

# single label files: (path under FIXTURES, format, number of records)
SINGLE_FILES = [
    ("dfdc/dfdc_train_part_1/metadata.json", "dfdc", 2),
    ("dfdc_test/sample_submission.csv", "dfdc", 3),
    ("avdeepfake1m/val_metadata.json", "avdeepfake1m", 2),
    ("avdeepfake1m/test_files.txt", "avdeepfake1m", 2),
    ("lavdf/metadata.json", "lavdf", 4),
    ("csv/validation_labels.csv", "csv", 2),
]


def copy_fixture(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def counts(ds: Dataset) -> dict[str, tuple[int, int, int]]:
    out: dict[str, list[int]] = {}
    for r in ds.records:
        row = out.setdefault(r.split, [0, 0, 0])
        row[[Label.REAL, Label.FAKE, Label.UNKNOWN].index(r.label)] += 1
    return {k: tuple(v) for k, v in out.items()}


def test_every_registered_format_has_a_fixture():
    assert set(FORMATS.names()) == set(EXPECTED)


@pytest.mark.parametrize("fmt", FORMATS.names())
def test_reader_on_fixture(fmt):
    folder, expected_counts, n_expected = EXPECTED[fmt]
    path = FIXTURES / folder
    assert detect_format(path) == fmt
    ds = load_dataset(path)
    assert ds.format == fmt and ds.root == path
    assert counts(ds) == expected_counts
    assert sorted(ds.splits()) == sorted(expected_counts)
    assert len(ds.by_id()) == len(ds.records)  # ids unique
    assert all(r.path is not None and r.path.is_file() for r in ds.records)
    assert ds.missing == []
    assert (None if ds.expected_ids is None else len(ds.expected_ids)) == n_expected
    if ds.expected_ids is not None:
        assert all(ds.by_id()[i].label is Label.UNKNOWN for i in ds.expected_ids)
    for r in ds.records:
        assert (r.modality is Modality.NONE) == (r.label is not Label.FAKE)
        if r.segments:
            assert r.label is Label.FAKE
    # the same format given explicitly reads the same records
    assert load_dataset(path, fmt).records == ds.records


@pytest.mark.parametrize("fmt", FORMATS.names())
def test_reader_split_filter(fmt):
    folder, expected_counts, _ = EXPECTED[fmt]
    split = sorted(expected_counts)[0]
    ds = load_dataset(FIXTURES / folder, split=split)
    assert counts(ds) == {split: expected_counts[split]}
    with pytest.raises(FormatError, match=rf"no videos with split 'nosuch' \(splits present: {', '.join(sorted(expected_counts))}\)"):
        load_dataset(FIXTURES / folder, split="nosuch")


@pytest.mark.parametrize("fmt", sorted(set(FORMATS.names()) - {"folders"}))  # folders lists what is on disk
def test_reader_missing_videos(fmt, tmp_path):
    folder, _, _ = EXPECTED[fmt]
    root = copy_fixture(tmp_path, folder)
    full = load_dataset(root)
    gone = [r for r in full.records if Path(r.source).suffix][-1]  # listed in a label file
    gone.path.unlink()
    with pytest.raises(FormatError, match=rf"1 of {len(full)} listed videos are missing on disk: .*{gone.path.name}"):
        load_dataset(root)
    ds = load_dataset(root, allow_missing=True)
    assert ds.missing == [gone.id]
    assert [r.id for r in ds.records] == [r.id for r in full.records if r is not gone]
    # labels only: nothing is checked on disk, paths still resolved
    for r in full.records:
        r.path.unlink(missing_ok=True)
    labels = load_dataset(root, check_files=False)
    listed = [r for r in full.records if Path(r.source).suffix]  # a csv test/ folder is enumerated
    assert labels.records == listed and labels.missing == []


@pytest.mark.parametrize("rel,fmt,n", SINGLE_FILES)
def test_single_label_file(rel, fmt, n):
    path = FIXTURES / rel
    assert detect_format(path) == fmt
    ds = load_dataset(path, check_files=False)
    assert len(ds) == n and ds.root == path.parent and ds.sources == [path]
    assert all(r.path is not None and r.path.is_file() for r in ds.records)  # videos found from the file alone


def test_avdeepfake1m_record_fields():
    ds = load_dataset(FIXTURES / "avdeepfake1m")
    both = ds.by_id()["lrs3/id01/00001/fake_video_fake_audio.mp4"]
    assert both.label is Label.FAKE and both.modality is Modality.BOTH
    assert both.segments == (Segment(1.2, 1.64), Segment(2.0, 2.5))
    assert both.visual_segments == both.audio_segments == both.segments
    assert (both.fps, both.n_frames, both.duration) == (25.0, 100, 4.0)
    assert both.original == "lrs3/id01/00001/real.mp4" and both.audio_model == "your_tts"
    assert both.path == FIXTURES / "avdeepfake1m" / "train" / both.id
    assert both.frame_labels(25.0, 100)[[29, 30, 40, 41, 50, 61, 62]].tolist() == [0, 1, 1, 0, 1, 1, 0]
    audio = ds.by_id()["lrs3/id03/00002/real_video_fake_audio.mp4"]
    assert audio.modality is Modality.AUDIO and audio.visual_segments == () and audio.split == "val"
    assert ds.expected_ids == ["000001.mp4", "000002.mp4"]
    assert ds.by_id()["000001.mp4"].path == FIXTURES / "avdeepfake1m" / "test" / "000001.mp4"


def test_avdeepfake1m_videos_beside_metadata_and_json_test_list(tmp_path):
    (tmp_path / "test_files.json").write_text(json.dumps(["000001.mp4", "000002.mp4"]))
    (tmp_path / "000001.mp4").touch()
    ds = load_dataset(tmp_path, allow_missing=True)
    assert ds.format == "avdeepfake1m" and ds.missing == ["000002.mp4"]
    assert ds.expected_ids == ["000001.mp4", "000002.mp4"]  # a submission still needs the missing one
    assert ds.records[0].path == tmp_path / "000001.mp4"


def test_lavdf_record_fields():
    ds = load_dataset(FIXTURES / "lavdf")
    r = ds.by_id()["dev/000003.mp4"]
    assert r.modality is Modality.BOTH and r.segments == (Segment(0.2, 0.6), Segment(2.0, 2.36))
    assert (r.duration, r.n_frames, r.split) == (2.4, 60, "val")
    assert ds.by_id()["test/000005.mp4"].modality is Modality.AUDIO


def test_lavdf_dev_is_the_validation_split():
    """LAV-DF calls its validation split `dev`: it is read as "val" (what training validates on by
    default, data.val_split=val), said in the notes, and `--split dev` still selects it."""
    ds = load_dataset(FIXTURES / "lavdf")
    assert ds.splits() == ["test", "train", "val"]
    assert any("'dev' split is read as 'val'" in n for n in ds.notes)
    for name in ("dev", "val", "validation"):
        assert [r.id for r in load_dataset(FIXTURES / "lavdf", split=name).records] == ["dev/000003.mp4"]


def test_dfdc_records_and_test_set():
    ds = load_dataset(FIXTURES / "dfdc")
    fake = ds.by_id()["abarnvbtwb.mp4"]
    assert fake.segments == () and fake.modality is Modality.UNKNOWN and fake.original == "aaqaifqrwn.mp4"
    assert fake.frame_labels(10.0, 5).tolist() == [1] * 5  # whole-video fake
    assert fake.source == "dfdc_train_part_0/metadata.json"
    assert any("stream of every fake is unknown" in n for n in ds.notes)
    test = load_dataset(FIXTURES / "dfdc_test")
    assert test.expected_ids == ["aassnaulhq.mp4", "aayfryxljh.mp4", "acazlolrpz.mp4"]
    assert {r.label for r in test.records} == {Label.UNKNOWN}


def test_dfdc_labels_csv_other_than_template(tmp_path):
    (tmp_path / "labels.csv").write_text("filename,label\na.mp4,1\nb.mp4,0\n")
    ds = load_dataset(tmp_path / "labels.csv", check_files=False)
    assert [(r.id, r.label) for r in ds.records] == [("a.mp4", Label.FAKE), ("b.mp4", Label.REAL)]
    assert ds.expected_ids is None


def test_csv_bare_test_folder_needs_explicit_format(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("x.mp4", "sub/y.webm", "notes.txt"):
        (tmp_path / name).touch()
    with pytest.raises(FormatError, match="matches no known dataset format"):
        detect_format(tmp_path)
    ds = load_dataset(tmp_path, "csv")
    assert ds.expected_ids == ["sub/y.webm", "x.mp4"] and ds.splits() == ["test"]


def test_folders_ids_and_skipped_files():
    ds = load_dataset(FIXTURES / "folders")
    assert sorted(ds.by_id()) == ["train/fake/f1.mp4", "train/fake/faceswap/f2.mkv", "train/real/r1.mp4",
                                  "train/real/r2.avi", "val/fake/f3.MOV", "val/real/r3.webm"]


# --------------------------------------------------------------------------------------- detection


def test_detect_nothing_lists_what_was_looked_for(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(FormatError) as e:
        detect_format(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg
    for name in FORMATS.names():
        assert f"- {name}: " in msg
    with pytest.raises(FormatError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_detect_prediction_json_is_not_dfdc(tmp_path):
    p = tmp_path / "prediction.json"
    p.write_text(json.dumps({"000001.mp4": [[0.9, 1.0, 2.0]]}))
    with pytest.raises(FormatError, match="matches no known dataset format"):
        detect_format(p)


def test_detect_ambiguous_folder(tmp_path):
    root = copy_fixture(tmp_path, "lavdf")
    (root / "real").mkdir()
    (root / "real" / "a.mp4").touch()
    with pytest.raises(FormatError, match=r"several dataset formats \(folders, lavdf\).*--format"):
        detect_format(root)
    assert load_dataset(root, "lavdf").format == "lavdf"


def test_unknown_format_name_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'lavdf'"):
        load_dataset(FIXTURES / "lavdf", "lavd")


# --------------------------------------------------------------------------------------- bad input


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=1))
    return path


def av_entry(**kw):
    entry = {"file": "a.mp4", "original": None, "split": "train", "modify_type": "visual_modified",
             "audio_model": None, "fake_segments": [[1.0, 2.0]], "visual_fake_segments": [[1.0, 2.0]],
             "audio_fake_segments": [], "video_frames": 100, "audio_frames": 64000}
    entry.update(kw)
    return entry


def load_av(tmp_path: Path, *entries) -> Dataset:
    return load_dataset(write_json(tmp_path / "train_metadata.json", list(entries)), check_files=False)


def test_malformed_json(tmp_path):
    p = tmp_path / "metadata.json"
    p.write_text('{\n "a.mp4": {"label": "REAL"},\n "b.mp4": {"label": "FAKE",}\n}\n')
    with pytest.raises(FormatError, match=r"metadata.json, line 3: malformed JSON"):
        load_dataset(p, "dfdc", check_files=False)


def test_malformed_csv_row(tmp_path):
    p = tmp_path / "train_labels.csv"
    p.write_text("video_name,target\na.mp4,1\nb.mp4,0,extra\n")
    with pytest.raises(FormatError, match=r"train_labels.csv, line 3: row has 3 cells, the header has 2"):
        load_dataset(p, check_files=False)


def test_malformed_csv_quoting(tmp_path):
    p = tmp_path / "train_labels.csv"
    p.write_text('video_name,target\na.mp4,1\n"b.mp4,0\n')
    with pytest.raises(FormatError, match=r"train_labels.csv, line \d+: malformed CSV"):
        load_dataset(p, "csv", check_files=False)


def test_missing_required_key(tmp_path):
    bad = av_entry(file="b.mp4")
    del bad["fake_segments"]
    with pytest.raises(FormatError, match=r"train_metadata.json, entry \[1\] \('b.mp4'\): missing required key\(s\) fake_segments"):
        load_av(tmp_path, av_entry(), bad)


def test_missing_required_key_lavdf(tmp_path):
    entry = {"file": "train/1.mp4", "fake_periods": [], "modify_video": False}
    with pytest.raises(FormatError, match=r"entry \[0\] \('train/1.mp4'\): missing required key\(s\) modify_audio"):
        load_dataset(write_json(tmp_path / "metadata.json", [entry]), "lavdf", check_files=False)


def test_missing_required_key_dfdc(tmp_path):
    p = write_json(tmp_path / "metadata.json", {"a.mp4": {"label": "REAL"}, "b.mp4": {"split": "train"}})
    with pytest.raises(FormatError, match=r"key 'b.mp4': missing required key label"):
        load_dataset(p, "dfdc", check_files=False)


def test_missing_column(tmp_path):
    p = tmp_path / "train_labels.csv"
    p.write_text("video,target\na.mp4,1\n")
    with pytest.raises(FormatError, match=r"line 1: missing column\(s\) video_name"):
        load_dataset(p, "csv", check_files=False)


def test_unknown_label_dfdc(tmp_path):
    p = write_json(tmp_path / "metadata.json", {"a.mp4": {"label": "REAL"}, "b.mp4": {"label": "MAYBE"}})
    with pytest.raises(FormatError, match=r"metadata.json, key 'b.mp4': unknown label 'MAYBE'"):
        load_dataset(p, check_files=False)


def test_unknown_target_csv(tmp_path):
    p = tmp_path / "train_labels.csv"
    p.write_text("video_name,target\na.mp4,1\nb.mp4,2\n")
    with pytest.raises(FormatError, match=r"line 3: unknown target '2' for 'b.mp4'"):
        load_dataset(p, check_files=False)


def test_unknown_modify_type(tmp_path):
    with pytest.raises(FormatError, match=r"entry \[0\] \('a.mp4'\): unknown modify_type 'swapped'"):
        load_av(tmp_path, av_entry(modify_type="swapped"))


def test_duplicate_ids_csv(tmp_path):
    p = tmp_path / "train_labels.csv"
    p.write_text("video_name,target\na.mp4,1\nb.mp4,0\na.mp4,0\n")
    with pytest.raises(FormatError, match=r"line 4: duplicate id 'a.mp4', first listed at .*train_labels.csv, line 2"):
        load_dataset(p, check_files=False)


def test_duplicate_ids_across_dfdc_parts(tmp_path):
    for part in ("dfdc_train_part_0", "dfdc_train_part_1"):
        (tmp_path / part).mkdir()
        write_json(tmp_path / part / "metadata.json", {"a.mp4": {"label": "REAL"}})
    with pytest.raises(FormatError, match=r"dfdc_train_part_1.metadata.json, key 'a.mp4': duplicate id 'a.mp4', "
                       r"first listed at .*dfdc_train_part_0.metadata.json"):
        load_dataset(tmp_path, check_files=False)


@pytest.mark.parametrize("segment,problem", [
    ([2.0, 2.0], "start >= end"),
    ([2.5, 1.0], "start >= end"),
    ([-0.5, 1.0], "negative start"),
    ([3.0, 4.1], "ends beyond the video duration 4.000 s"),
    ([1.0], "a segment is"),
    (["1", 2], "a segment is"),
])
def test_bad_segments(tmp_path, segment, problem):
    with pytest.raises(FormatError, match=rf"entry \[0\] \('a.mp4'\): fake_segments\[0\] = .*{problem}"):
        load_av(tmp_path, av_entry(fake_segments=[segment], visual_fake_segments=[]))


def test_segment_end_within_one_frame_of_duration_is_accepted(tmp_path):
    ds = load_av(tmp_path, av_entry(fake_segments=[[3.0, 4.039]], visual_fake_segments=[]))
    assert ds.records[0].segments == (Segment(3.0, 4.039),)


def test_bad_segments_lavdf(tmp_path):
    entry = {"file": "train/1.mp4", "fake_periods": [[1.0, 3.5]], "duration": 3.0, "modify_video": True,
             "modify_audio": False}
    with pytest.raises(FormatError, match=r"fake_periods\[0\] = \[1.0, 3.5\]: ends beyond the video duration 3.000 s"):
        load_dataset(write_json(tmp_path / "metadata.json", [entry]), check_files=False)


@pytest.mark.parametrize("kw,problem", [
    (dict(modify_type="real"), "modify_type is 'real' but fake_segments lists 1 segment"),
    (dict(fake_segments=[], visual_fake_segments=[]), "modify_type is 'visual_modified' but fake_segments is empty"),
    (dict(audio_fake_segments=[[1.0, 2.0]]), "modify_type is 'visual_modified' but audio_fake_segments is not empty"),
])
def test_modify_type_disagrees_with_segments(tmp_path, kw, problem):
    with pytest.raises(FormatError, match=rf"entry \[1\] \('b.mp4'\): {problem}"):
        load_av(tmp_path, av_entry(), av_entry(file="b.mp4", **kw))


def test_lavdf_flags_disagree_with_periods(tmp_path):
    base = {"file": "train/1.mp4", "fake_periods": [[1.0, 1.5]], "modify_video": False, "modify_audio": False}
    with pytest.raises(FormatError, match="modify_video and modify_audio are false"):
        load_dataset(write_json(tmp_path / "metadata.json", [base]), check_files=False)
    base.update(modify_video=True, n_fakes=2)
    with pytest.raises(FormatError, match="n_fakes is 2 but fake_periods lists 1"):
        load_dataset(write_json(tmp_path / "metadata.json", [base]), check_files=False)


def test_missing_files_error_lists_first_few_and_count(tmp_path):
    names = [f"v{i}.mp4" for i in range(8)]
    (tmp_path / "train_labels.csv").write_text("video_name,target\n" + "".join(f"{n},0\n" for n in names))
    (tmp_path / "v0.mp4").touch()
    with pytest.raises(FormatError) as e:
        load_dataset(tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "train_labels.csv"))
    assert "7 of 8 listed videos are missing on disk" in msg and "and 2 more" in msg
    assert str(tmp_path / "v1.mp4") in msg and "v7.mp4" not in msg and "--allow-missing" in msg
    ds = load_dataset(tmp_path, allow_missing=True)
    assert [r.id for r in ds.records] == ["v0.mp4"] and ds.missing == names[1:]


def test_empty_dataset_is_an_error(tmp_path):
    with pytest.raises(FormatError, match="no videos listed"):
        load_dataset(write_json(tmp_path / "metadata.json", []), "lavdf")


def test_avdeepfake1m_files_relative_to_root(tmp_path):
    """The synthetic generator writes `file` = "train/000001.mp4" relative to the root, not to train/."""
    write_json(tmp_path / "train_metadata.json", [av_entry(file="train/000001.mp4"),
                                                   av_entry(file="train/000002.mp4")])
    (tmp_path / "train").mkdir()
    for name in ("000001.mp4", "000002.mp4"):
        (tmp_path / "train" / name).touch()
    ds = load_dataset(tmp_path)
    assert [r.path for r in ds.records] == [tmp_path / "train" / "000001.mp4", tmp_path / "train" / "000002.mp4"]
    for r in ds.records:
        r.path.unlink()
    labels = load_dataset(tmp_path / "train_metadata.json", check_files=False)
    assert labels.records == ds.records


def test_avdeepfake1m_labels_supersede_test_file_list(tmp_path):
    root = copy_fixture(tmp_path, "avdeepfake1m")
    write_json(root / "test_metadata.json", [av_entry(file="000001.mp4", split="test"),
                                             av_entry(file="000002.mp4", split="test", modify_type="real",
                                                      fake_segments=[], visual_fake_segments=[])])
    ds = load_dataset(root, split="test")
    assert [(r.id, r.label) for r in ds.records] == [("000001.mp4", Label.FAKE), ("000002.mp4", Label.REAL)]
    assert ds.expected_ids is None and any("test_files.txt not read" in n for n in ds.notes)


@pytest.mark.parametrize("folder", ["dfdc", "csv", "folders"])
def test_real_fake_only_formats_leave_the_fake_stream_unknown_and_say_so_once(folder):
    ds = load_dataset(FIXTURES / folder)
    fakes = [r for r in ds.records if r.label is Label.FAKE]
    reals = [r for r in ds.records if r.label is Label.REAL]
    assert fakes and reals
    assert all(r.modality is Modality.UNKNOWN and not r.modality.visual and not r.modality.audio for r in fakes)
    assert all(r.modality is Modality.NONE for r in reals)
    assert sum("stream of every fake is unknown" in n for n in ds.notes) == 1


def test_folders_find_broadcast_and_phone_containers_by_probing(tmp_path):
    """.ts .m2ts .mts .m4v .3gp .flv .wmv .mpg are videos; so is a video under an unknown name;
    pictures and text files are not."""
    import cv2

    from fakelens.io.encode import write_video

    frames = [np.zeros((16, 16, 3), np.uint8)] * 25
    kinds = {".ts": "h264", ".m2ts": "h264", ".mts": "h264", ".m4v": "h264", ".3gp": "h264", ".flv": "h264",
             ".wmv": "mpeg4", ".mpg": "mpeg2video"}
    for i, (ext, codec) in enumerate(kinds.items()):
        write_video(tmp_path / ("real" if i % 2 else "fake") / f"v{i}{ext}", frames, 25.0, codec=codec)
    unknown = tmp_path / "real" / "camera_dump.raw"
    unknown.write_bytes((tmp_path / "real" / "v1.m2ts").read_bytes())
    cv2.imwrite(str(tmp_path / "real" / "thumb.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "fake" / "README").write_text("made with tool X\n")
    ds = load_dataset(tmp_path, format="folders")
    assert sorted(r.id for r in ds.records) == sorted(
        [f"{'real' if i % 2 else 'fake'}/v{i}{ext}" for i, ext in enumerate(kinds)] + ["real/camera_dump.raw"])


def test_a_wrong_header_in_one_label_file_is_refused_when_another_is_fine(tmp_path):
    """Before: validation_labels.csv with header video,label was skipped silently (the run
    trained without that split) because train_labels.csv was fine."""
    shutil.copytree(FIXTURES / "csv" / "test", tmp_path / "train")
    names = [p.name for p in sorted((tmp_path / "train").iterdir())]
    (tmp_path / "train_labels.csv").write_text("video_name,target\n" + "".join(f"{n},0\n" for n in names))
    (tmp_path / "sample_submission.csv").write_text("video_name,score\na.mp4,0.5\n")  # not a label file: left alone
    assert load_dataset(tmp_path, format="csv").records
    (tmp_path / "validation_labels.csv").write_text("video,label\na.mp4,1\n")
    with pytest.raises(FormatError, match=r"validation_labels.csv, line 1: header is 'video,label' but CSV labels "
                                          r"need the columns video_name,target"):
        load_dataset(tmp_path)


def test_csv_label_columns_in_another_order_or_beside_others_are_read(tmp_path):
    """A header target,video_name (or with an extra column first) was refused as "header is
    'target,video_name' but CSV labels need the columns video_name,target; rename the columns",
    although the reader takes cells by name; such files are now read, the same labels."""
    shutil.copytree(FIXTURES / "csv" / "test", tmp_path / "train")
    names = [p.name for p in sorted((tmp_path / "train").iterdir())]
    labels = tmp_path / "train_labels.csv"
    labels.write_text("video_name,target\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names)))
    want = {(r.id, r.label) for r in load_dataset(tmp_path).records}
    assert len(want) == len(names)
    for text in ("target,video_name\n" + "".join(f"{i % 2},{n}\n" for i, n in enumerate(names)),
                 "fold,Video_Name,target\n" + "".join(f"3,{n},{i % 2}\n" for i, n in enumerate(names))):
        labels.write_text(text)
        ds = load_dataset(tmp_path)
        assert ds.format == "csv" and {(r.id, r.label) for r in ds.records} == want


def test_csv_labels_with_a_wrong_header_are_an_error_not_unlabelled_videos(tmp_path, capsys):
    """`data inspect --format csv` used to ignore a labels file with another header and list its
    videos as unlabelled test videos."""
    shutil.copytree(FIXTURES / "csv" / "test", tmp_path / "test")
    (tmp_path / "train_labels.csv").write_text("name,label\na.mp4,1\n")
    with pytest.raises(FormatError, match=r"train_labels.csv, line 1: header is 'name,label' but CSV labels need "
                                          r"the columns video_name,target"):
        load_dataset(tmp_path, format="csv")
    from fakelens.cli.main import main

    assert main(["data", "inspect", str(tmp_path), "--format", "csv", "--labels-only"]) == 2
    assert "header is 'name,label'" in capsys.readouterr().err
    # A bare folder of test videos (no label-like file) is still read as the unlabelled test set.
    (tmp_path / "train_labels.csv").unlink()
    assert {r.split for r in load_dataset(tmp_path, format="csv").records} == {"test"}
