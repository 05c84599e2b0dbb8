"""Errors cross process boundaries intact: every FakelensError pickles (a worker hands it to its
parent), so `predict --workers N` treats an undecodable video exactly as --workers 0 does."""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
import pkgutil

import pytest

import fakelens
from fakelens.errors import FakelensError


def _all_error_types() -> list[type]:
    """FakelensError and every subclass defined anywhere in the package (all modules imported)."""
    for mod in pkgutil.walk_packages(fakelens.__path__, "fakelens."):
        importlib.import_module(mod.name)
    seen: list[type] = []
    todo = [FakelensError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return [c for c in seen if c.__module__.startswith("fakelens")]


def _sample_args(cls: type) -> dict:
    """A value for every parameter of cls.__init__ (optional ones too, so that they are carried)."""
    kwargs = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kwargs[name] = 7 if "int" in str(p.annotation) else f"<{name}>"
    return kwargs


def test_every_fakelens_error_pickles_with_its_message_and_attributes():
    types = _all_error_types()
    names = {c.__name__ for c in types}
    # the ones with their own __init__, which the default pickling got wrong
    assert {"MediaError", "FormatError", "SubmissionError", "OutputError", "UploadRejected"} <= names
    for cls in types:
        kwargs = _sample_args(cls)
        err = cls(**kwargs) if kwargs else cls("a message")
        err.extra = [1, 2]  # attributes set after construction survive too
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is cls, cls
        assert str(copy) == str(err) and copy.args == err.args, cls
        assert copy.__dict__ == err.__dict__, cls


def test_predict_workers_on_a_broken_video_matches_the_in_process_run(tmp_path, make_video, capsys):
    """A real spawned pool: a MediaError raised in a worker used to fail to unpickle in the parent
    (BrokenProcessPool / TypeError), even with --on-error prior."""
    from fakelens.cli.main import main
    from tests.test_inference import _checkpoint

    run, _ = _checkpoint(tmp_path)
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    for i in range(2):
        (data / "real" / f"r{i}.mkv").write_bytes(make_video(f"r{i}.mkv", n_frames=12).read_bytes())
    (data / "fake" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    outs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}" / "submission.csv"
        capsys.readouterr()
        assert main(["predict", str(run), str(data), "--format", "csv", "--out", str(out), "--device", "cpu",
                     "--on-error", "prior", "--workers", str(workers), "--no-progress", "--json"]) == 0, \
            capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out)
        failures = json.loads(out.with_name(out.name + ".failures.json").read_text())
        outs[workers] = (out.read_text(), summary["failed"], failures)
    assert outs[2] == outs[0]
    text, failed, failures = outs[2]
    assert failed == 1 and [f["id"] for f in failures["failures"]] == ["fake/broken.mp4"]
    assert "broken.mp4" in failures["failures"][0]["reason"] and failures["fallback"]["score"] == pytest.approx(0.3)
    assert len(text.strip().splitlines()) == 4  # header + 3 videos, the broken one at the prior
