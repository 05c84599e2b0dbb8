"""The bad-input corpus (tests/bad_inputs.py) through every entry point: `data inspect`,
`preprocess`, `predict`, `detect`, `evaluate`, `submission check` (the CLI in-process) and the
web API (TestClient). Each case ends as its table row in docs/bad-inputs.md says: a clear error
naming the file and the problem, the file reported with its problem while the job goes on, a
documented fallback recorded in the output, or a normal result; never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_inputs import CASES, DOC, Source, make_case, render_table, run_entry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tiny_synth, tmp_path_factory):
    """Case inputs, each made once when its first entry point needs it."""
    src = Source.from_tiny_set(tiny_synth)
    root = tmp_path_factory.mktemp("corpus")
    made: dict[str, Path] = {}

    def get(case) -> tuple[Path, Path]:
        if case.name not in made:
            made[case.name] = make_case(case, root / case.name, src)
        return made[case.name], root / case.name

    return get


@pytest.fixture(scope="module")
def web_client(detect_run):
    from fastapi.testclient import TestClient

    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.web.app import create_app

    run = load_run(detect_run["run"])
    # Grad-CAM is exercised by `detect` on every case; the API's own part is upload, probing and limits
    return TestClient(create_app(Analyser(Predictor(run, device="cpu"), saliency=False)), base_url="http://localhost")


@pytest.mark.timeout(300)  # a hang fails the case instead of the suite
@pytest.mark.parametrize("case,entry", [(c, e) for c in CASES for e in c.entries],
                         ids=[f"{c.name}-{e}" for c in CASES for e in c.entries])
def test_bad_input(case, entry, corpus, detect_run, request):
    path, root = corpus(case)
    client = request.getfixturevalue("web_client") if entry == "web" and case.kind != "checkpoint" else None
    res = run_entry(case, entry, path, root, detect_run["run"], client)
    assert res.crash is None, f"{case.name} through {entry} crashed:\n{res.crash}"
    assert "Traceback (most recent call last)" not in res.text, res.text[-3000:]
    want = case.expect[entry]
    assert res.status == want.status, f"status {res.status}, expected {want.status}:\n{res.everything[-3000:]}"
    for phrase in want.says:
        assert phrase in res.everything, f"{phrase!r} not said:\n{res.everything[-3000:]}"
    if want.outcome in ("error", "reported"):
        assert path.name in res.everything or case.kind == "dataset", f"{path.name!r} not named:\n{res.text[-3000:]}"
    if entry == "predict" and case.kind == "video" and want.outcome in ("ok", "fallback"):
        # the table's word is what --predictions records: a fallback (or one stream) is no plain "ok"
        import json

        preds = json.loads((root / "out-predict" / "predictions.json").read_text(encoding="utf-8"))
        recorded = [p["fallback"] or p["streams"] for p in preds if p["fallback"] or p["streams"] != "audio-visual"]
        assert bool(recorded) == (want.outcome == "fallback"), f"{want.outcome} in the table, recorded: {recorded}"
    if entry == "predict" and want.outcome == "error":
        assert not (root / "out-predict" / "prediction.txt").exists(), "a submission was written despite the error"


def test_the_corpus_is_big_enough_and_complete():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)
    for c in CASES:
        assert set(c.expect) == set(c.entries), f"{c.name}: an outcome for every entry point that takes it"


def test_docs_table_is_generated_from_the_cases():
    assert DOC.read_text(encoding="utf-8") == render_table() + "\n", (
        "docs/bad-inputs.md is out of date: run `python tests/bad_inputs.py --write`")
