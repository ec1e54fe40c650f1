"""Command line: ``wavecore demo``, ``wavecore forward CONFIG`` and ``wavecore info``
(also ``python -m wavecore``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wavecore", description="Differentiable Maxwell FDTD for ground-penetrating radar.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="simulate a 2-D GPR B-scan over a built-in model")
    demo.add_argument("--out", default="wavecore_demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="coarse grid, few traces (seconds)")
    demo.add_argument("--threads", type=int, default=None, help="OpenMP threads")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    demo.add_argument("--fwi", action="store_true",
                      help="invert a built-in synthetic for permittivity instead (needs scipy)")
    commands.add_parser("info", help="show the build configuration (show_config)")
    forward = commands.add_parser("forward", help="run the forward job of a TOML file "
                                  "(receiver data to HDF5; a rerun resumes)")
    forward.add_argument("config", help="the job's TOML file")
    forward.add_argument("--dry-run", action="store_true",
                         help="print the plan (cells, steps, memory, estimated time) only")
    forward.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.command == "forward":
        return _forward(args)

    if args.command == "info":
        from .config import show_config

        show_config()
        return 0
    if args.fwi:
        from .demo import run_fwi_demo

        s = run_fwi_demo(args.out, quick=args.quick, n_threads=args.threads, quiet=args.quiet,
                         plot=not args.no_plot)
        print(f"FWI of a {s['grid'][0]} x {s['grid'][1]} model, {s['shots']} shots, "
              f"{s['iterations']} iterations in {s['seconds']:.1f} s")
        print(f"misfit (full band): {s['misfit_reduction']:.3g} of its start; permittivity "
              f"error {100 * s['model_error_start']:.1f} % -> {100 * s['model_error_final']:.1f} %")
        print(f"results:   {s['npz']}" + (f", {s['png']}" if s["png"] else ""))
        return 0
    from .demo import run_demo

    summary = run_demo(args.out, quick=args.quick, n_threads=args.threads, quiet=args.quiet,
                       plot=not args.no_plot)
    print(f"{summary['traces']} traces x {summary['samples']} samples on a "
          f"{summary['grid'][0]} x {summary['grid'][1]} grid in {summary['seconds']:.1f} s "
          f"({summary['mcells_per_s']:.0f} Mcells/s)")
    print(f"data:      {summary['npz']}")
    if summary["png"]:
        print(f"radargram: {summary['png']}")
    else:
        print("radargram: not drawn (install matplotlib: pip install 'wavecore[plot]')")
    return 0


def _forward(args) -> int:
    from .jobs import ConfigError, run_forward_job

    try:
        summary = run_forward_job(args.config, quiet=args.quiet, dry_run=args.dry_run)
    except ConfigError as exc:
        print(f"wavecore forward: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        gib = 2 ** 30
        print(f"{summary['system']}: {summary['model_cells']} model cells, {summary['shots']} "
              f"shots in {summary['tasks']} task(s), {summary['steps']} steps")
        print(f"memory per task: {summary['memory_per_task'] / gib:.3g} GiB; snapshots: "
              f"{summary['snapshot_bytes']} bytes (forward only)")
        print(f"estimated time: {summary['seconds_per_task']:.3g} s per task, "
              f"{summary['estimated_seconds']:.3g} s in all (from a 20-step calibration run)")
        print(f"output: {summary['output']}")
        return 0
    print(f"{summary['run']} shot(s) run, {summary['skipped']} already done, "
          f"{summary['seconds']:.1f} s -> {summary['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
