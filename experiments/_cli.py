"""The ``jaxvision`` command: list, train and evaluate experiments (and compute FID).

    jaxvision list
    jaxvision train EXPERIMENT [--workdir DIR] [--set key=value ...] [--tiny]
    jaxvision eval EXPERIMENT --workdir DIR [--step N] [--set key=value ...]
    jaxvision fid PATH PATH [--weights FILE] [--save-stats] [--no-check-hash] ...
                                 (jaxvision.metrics.generative.fid_pipeline.main)

It lives with the experiments it runs (the application layer): the ``jaxvision`` library never imports
``experiments``.

Bad input (unknown experiment, unknown config key, wrong-typed value, a corrupt checkpoint, a workdir holding
another experiment) prints ``jaxvision: error: ...`` to stderr and exits with status 2 before anything in the
workdir is written; a non-finite loss exits with status 3 (the last good checkpoint is kept). After a successful
``train`` or ``eval`` the workdir gets ``summary.json`` (command, config, metrics, machine, date, wall time; see
``experiments/_summary.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxvision", description="Train and evaluate jaxvision experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    for name, help_ in (("train", "train an experiment (resumes from WORKDIR's latest checkpoint)"),
                        ("eval", "evaluate the latest readable (or --step N) checkpoint in WORKDIR with the config "
                                "stored in it")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("experiment", help="experiment name (see `jaxvision list`)")
        c.add_argument("--workdir", required=name == "eval",
                       help="run directory for checkpoints, metrics.jsonl and images (train default: runs/EXPERIMENT)")
        c.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set num_steps=500, or pick a preset: --set preset=NAME "
                            "(repeatable)" if name == "train" else
                            "override an eval-time config field (the experiment's EVAL_KEYS; repeatable)")
        if name == "eval":
            c.add_argument("--step", type=int, default=None,
                           help="evaluate this checkpoint step exactly (default: the newest readable one)")
        if name == "train":
            c.add_argument("--tiny", action="store_true", help="apply the experiment's TINY overrides (smoke test)")
    sub.add_parser("fid", help="compute FID between image folders / npz statistics", add_help=False)
    return p


def _print_result(result: dict) -> None:
    print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items()}, indent=1,
                      default=str))


def _list() -> int:
    import dataclasses

    import experiments

    found, broken = experiments.discover()
    for name, module in sorted(found.items()):
        doc = (module.__doc__ or "").strip().splitlines()
        summary = doc[0].split(":", 1)[-1].strip() if doc else ""
        print(f"{name:28s} {summary}")
        keys = ", ".join(f.name for f in dataclasses.fields(module.Config))
        print(f"{'':28s} config: {keys}")
        if getattr(module, "PRESETS", None):
            print(f"{'':28s} presets: {', '.join(module.PRESETS)}")
    for name, err in sorted(broken.items()):
        print(f"{name:28s} (cannot be imported: {err})")
    return 0


def _run(args, argv: list[str]) -> int:
    import experiments
    from experiments import _summary

    t0 = time.perf_counter()
    module = experiments.get(args.experiment)
    sets = experiments.parse_sets(args.sets)
    if args.command == "train":
        cfg = experiments.make_config(module, sets, tiny=args.tiny)
        workdir = args.workdir or os.path.join("runs", args.experiment)
        if os.path.exists(workdir) and not os.path.isdir(workdir):
            raise experiments.ExperimentError(f"--workdir {workdir}: exists and is not a directory")
        print(f"[jaxvision] training {args.experiment} in {os.path.abspath(workdir)}", file=sys.stderr)
        result = module.train(cfg, workdir)
    else:
        if not os.path.isdir(args.workdir):
            raise experiments.ExperimentError(f"--workdir {args.workdir}: no such directory")
        from jaxvision.train.checkpoint import pinned_step

        workdir = args.workdir
        with pinned_step(args.step):
            cfg = experiments.stored_config(module, workdir, sets)
            result = module.evaluate(cfg, workdir)
    result = result or {}
    _summary.write_summary(workdir, _summary.make_summary(args.experiment, ["jaxvision", *argv], cfg, result,
                                                          time.perf_counter() - t0))
    _print_result(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxvision`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["fid"]:
        from jaxvision.metrics.generative import fid_pipeline

        return int(fid_pipeline.main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    from experiments import ExperimentError
    from jaxvision.train import CheckpointError, NonFiniteLossError, RunOptionError

    try:
        return _run(args, argv)
    except (ExperimentError, CheckpointError, RunOptionError, FileNotFoundError) as e:
        print(f"jaxvision: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"jaxvision: error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
