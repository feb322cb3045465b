"""Write ``docs/results/runs/<experiment>.json`` from a finished ``jaxvision train`` run's own outputs
(commit it with ``git add -f``: ``runs/`` is git-ignored).

    PYTHONPATH=. python docs/results/make_run_json.py EXPERIMENT LOG START_FILE --command "..." [--set k=v ...]

``LOG`` is the captured stdout+stderr of the run: its last JSON object is the result dict the CLI prints.
``START_FILE`` is a file created when the run was started (its mtime; the log's mtime is the end): ``wall_s``.
The config is the experiment's default config with the ``--set`` overrides the run used. ``machine`` names the CPU
and the load average seen while writing (the box is shared: timings are under load).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib

import experiments
from benchmarks.harness import cpu_model


def last_json(text: str) -> dict:
    start = text.rstrip().rfind("\n{")
    return json.loads(text[start + 1 if start >= 0 else 0:])


def main(argv=None) -> str:
    p = argparse.ArgumentParser()
    p.add_argument("experiment")
    p.add_argument("log")
    p.add_argument("start_file")
    p.add_argument("--command", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    module = experiments.get(args.experiment)
    cfg = experiments.make_config(module, experiments.parse_sets(args.set))
    text = pathlib.Path(args.log).read_text()
    end, start = os.path.getmtime(args.log), os.path.getmtime(args.start_file)
    out = {"experiment": args.experiment, "command": args.command, "config": dataclasses.asdict(cfg),
           "metrics": last_json(text),
           "machine": f"{cpu_model()}, 2 cores shared with other jobs (load average {os.getloadavg()[0]:.1f} "
                      f"when written)",
           "date": datetime.datetime.fromtimestamp(end, datetime.UTC).isoformat(timespec="seconds"),
           "wall_s": round(end - start, 1)}
    if args.note:
        out["note"] = args.note
    path = pathlib.Path(__file__).parent / "runs" / f"{args.experiment}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    return str(path)


if __name__ == "__main__":
    print(main())
