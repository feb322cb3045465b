"""README's "Training on your own data": its two commands, at TINY size, on a COCO-format folder written here."""
import json
import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data"))

from folder_fixtures import write_coco  # noqa: E402

from experiments import _cli  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_own_coco_folder_two_commands(tmp_path, capsys):
    text = README.read_text().split("### Training on your own data", 1)[1]
    commands = re.findall(r"^jaxvision (train|eval) (.*)$", text.split("```")[1], re.M)
    assert [c[0] for c in commands] == ["train", "eval"]
    data_dir = write_coco(str(tmp_path / "my_data"), "train", copies=3)  # 9 images >= TINY's batch of 8
    write_coco(data_dir, "val")
    results = []
    for command, args in commands:
        args = args.replace("runs/my_data", str(tmp_path / "runs" / "my_data"))
        args = args.replace("data_dir=my_data", f"data_dir={tmp_path / 'my_data'}")
        argv = [command, *args.split()] + (["--tiny"] if command == "train" else [])
        assert _cli.main(argv) == 0, argv
        out = capsys.readouterr().out
        results.append(json.loads(out[out.index("{\n"):]))  # the result JSON, after any log lines
    trained, evaluated = results
    assert trained["coco_ap"] == evaluated["coco_ap"] and 0 <= trained["coco_ap"] <= 1
    assert "map50_voc" in evaluated
    results = json.loads((tmp_path / "runs" / "my_data" / "eval" / "coco_results.json").read_text())
    assert {r["image_id"] for r in results} <= {17, 5, 1001} and {r["category_id"] for r in results} <= {3, 7}
