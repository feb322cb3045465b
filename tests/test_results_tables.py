"""README's result tables are what docs/results/make_tables.py renders from the committed run / benchmark files.

Pure text (no jax): fails when a number in a README table is edited by hand or a result file changes without
re-running the generator.
"""
import copy
import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mt():
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "docs" / "results" / "make_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_match_the_result_files(mt):
    text = (ROOT / "README.md").read_text()
    _, changed = mt.render(text)
    assert changed == [], (f"README tables {changed} differ from docs/results; run "
                           f"`python docs/results/make_tables.py` after committing the run files")


def test_reported_runs_are_full_runs_of_the_cli(mt):
    runs = mt.load_runs()
    assert {"ssd_shapes", "yolo_shapes", "localization_shapes", "landmarks_shapes", "dcgan_digits",
            "digits_classifier"} <= {r["experiment"] for r in runs.values()}
    for stem, rec in runs.items():
        assert rec["command"][:2] in (["jaxvision", "train"], ["jaxvision", "eval"]), stem
        assert rec["command"][2] == rec["experiment"] and "--tiny" not in rec["command"], stem
        assert stem.split("-")[0] == rec["experiment"], f"{stem}.json holds a run of {rec['experiment']}"


def test_a_new_run_file_adds_a_row_and_a_hand_edit_is_caught(mt, tmp_path):
    runs = mt.load_runs()
    ssd = next(r for r in runs.values() if r["experiment"] == "ssd_shapes")
    extra = copy.deepcopy(ssd)
    extra["metrics"]["map50_voc"] = 0.5
    more = {**runs, "ssd_shapes-variant": extra}
    before, after = mt.detection(runs).splitlines(), mt.detection(more).splitlines()
    assert len(after) == len(before) + 1
    assert any("| 0.500 |" in row and "ssd_shapes-variant.json" in row for row in after)

    readme = (ROOT / "README.md").read_text()
    table = mt._pattern("detection").search(readme).group(2)
    row = next(r for r in table.splitlines() if "ssd_shapes.json" in r)
    cell = f"| {ssd['metrics']['map50_voc']:.3f} |"
    assert cell in row
    edited = tmp_path / "README.md"
    edited.write_text(readme.replace(row, row.replace(cell, "| 0.999 |")))
    assert mt.main(["--check", "--readme", str(edited)]) == 1
    assert mt.main(["--readme", str(edited)]) == 0  # regenerating restores the file's numbers
    assert edited.read_text() == readme


def test_a_run_file_without_the_summary_keys_is_refused(mt, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"experiment": "x", "metrics": {}}))
    with pytest.raises(ValueError, match="bad.json: not a run summary"):
        mt.load_runs(str(tmp_path))
