"""Command line: ``wavecore demo``, ``wavecore forward CONFIG``, ``wavecore fwi
CONFIG``, ``wavecore plot``, ``wavecore export``, ``wavecore info`` and
``wavecore --version`` (also ``python -m wavecore``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wavecore", description="Differentiable Maxwell FDTD for ground-penetrating radar.")
    parser.add_argument("--version", action="version", version=f"wavecore {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="simulate a 2-D GPR B-scan over a built-in model")
    demo.add_argument("--out", default="wavecore_demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="coarse grid, few traces (seconds)")
    demo.add_argument("--threads", type=int, default=None, help="OpenMP threads")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    demo.add_argument("--fwi", action="store_true",
                      help="invert a built-in synthetic for permittivity instead (needs scipy)")
    commands.add_parser("info", help="show the build configuration and the optional "
                        "packages installed (show_config)")
    forward = commands.add_parser("forward", help="run the forward job of a TOML file "
                                  "(receiver data to HDF5; a rerun resumes)")
    forward.add_argument("config", help="the job's TOML file")
    forward.add_argument("--dry-run", action="store_true",
                         help="print the plan (cells, steps, memory, estimated time) only")
    forward.add_argument("--quiet", action="store_true", help="no progress bar")
    fwi = commands.add_parser("fwi", help="invert the data of a forward job ([inversion] "
                              "section; checkpoints each iteration)")
    fwi.add_argument("config", help="the job's TOML file")
    fwi.add_argument("--quiet", action="store_true", help="no progress bar")
    fwi.add_argument("--dry-run", action="store_true",
                     help="print the plan (memory, snapshot bytes, estimated time) only")
    plot = commands.add_parser("plot", help="draw a job file (B-scan of one receiver over "
                               "all shots, or a shot gather) or an FWI result (fwi.npz)")
    plot.add_argument("file", help="an HDF5 job file or an fwi.npz")
    plot.add_argument("--out", required=True, help="PNG file to write")
    plot.add_argument("--shot", type=int, default=None,
                      help="draw this shot's gather instead of the B-scan")
    plot.add_argument("--receiver", type=int, default=0, help="receiver of the B-scan")
    export = commands.add_parser("export", help="write a job file's receiver data as SEG-Y")
    export.add_argument("file", help="the HDF5 job file")
    export.add_argument("--segy", required=True, help="SEG-Y file to write")
    export.add_argument("--component", type=int, default=0,
                        help="component index for 3-D jobs with several components")
    args = parser.parse_args(argv)

    if args.command == "forward":
        return _forward(args)
    if args.command == "fwi":
        return _fwi(args)
    if args.command in ("plot", "export"):
        from .jobs._extras import MissingExtra, require

        try:
            require("h5py", "wavecore plot and export read HDF5 job files") \
                if not str(args.file).endswith(".npz") else None
            require(*(("matplotlib", "wavecore plot draws with matplotlib")
                      if args.command == "plot" else ("segyio", "SEG-Y is written by segyio")))
        except MissingExtra as exc:
            print(f"wavecore {args.command}: {exc}", file=sys.stderr)
            return 2
        return _plot(args) if args.command == "plot" else _export(args)

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


def _version() -> str:
    from . import __version__

    return __version__


def _job(args, command: str, run):
    """The summary of a job (``--dry-run``: its plan, printed), or None after
    printing a configuration error or the optional package to install."""
    from .jobs import ConfigError
    from .jobs._extras import MissingExtra

    try:
        summary = run(args.config, quiet=args.quiet, dry_run=args.dry_run)
    except (ConfigError, MissingExtra) as exc:
        print(f"wavecore {command}: {exc}", file=sys.stderr)
        return None
    if args.dry_run:
        _print_plan(summary)
    return summary


def _forward(args) -> int:
    from .jobs import run_forward_job

    summary = _job(args, "forward", run_forward_job)
    if summary is None:
        return 2
    if not args.dry_run:
        print(f"{summary['run']} shot(s) run, {summary['skipped']} already done, "
              f"{summary['seconds']:.1f} s -> {summary['output']}")
    return 0


def _fwi(args) -> int:
    from .jobs.fwi_job import run_fwi_job

    s = _job(args, "fwi", run_fwi_job)
    if s is None:
        return 2
    if args.dry_run:
        print(f"estimated {s['seconds_per_iteration']:.3g} s per gradient (one per "
              "iteration, a few more in line searches)")
    else:
        print(f"{s['iterations']} iterations: misfit {s['misfit_first']:.4g} -> "
              f"{s['misfit_last']:.4g}; model in {s['output']}")
    return 0


def _print_plan(s: dict) -> None:
    gib = 2 ** 30
    print(f"{s['system']}: {s['model_cells']} model cells, {s['shots']} shots in "
          f"{s['tasks']} task(s), {s['steps']} steps")
    print(f"memory per task: {s['memory_per_task'] / gib:.3g} GiB, of which snapshots "
          f"{s['snapshot_bytes'] / gib:.3g} GiB")
    if s.get("n_poles"):  # [model.debye]
        r = s["pole_ranges"]
        print(f"Debye poles: {s['n_poles']} per cell, delta_epsilon {r['delta_epsilon'][0]:.3g}"
              f" to {r['delta_epsilon'][1]:.3g}, tau {r['tau'][0]:.3g} to {r['tau'][1]:.3g} s "
              f"(epsilon is eps_inf); they add {s['pole_bytes'] / gib:.3g} GiB per task")
    print(f"estimated time: {s['seconds_per_task']:.3g} s per task, "
          f"{s['estimated_seconds']:.3g} s in all (from a 20-step calibration run)")
    print(f"output: {s['output']}")


def _job_data(path):
    import json

    from .jobs.io import read_shots

    out = read_shots(path)
    attrs = out["attrs"]
    return out, float(attrs["dt"]), json.loads(attrs["spacing"])


def _plot(args) -> int:
    from . import plots

    if str(args.file).endswith(".npz"):
        import numpy as np

        z = np.load(args.file)
        ax = plots.image(z["inverted"], title="inverted permittivity")
        plots.save(ax, args.out)
        ax = plots.misfit_curve(z["misfit"], stages=z["stage"])
        stem = args.out[:-4] if args.out.endswith(".png") else args.out
        print(f"wrote {args.out} and {plots.save(ax, stem + '_misfit.png')}")
        return 0
    out, dt, _ = _job_data(args.file)
    data = out["receiver_data"]
    data = data.reshape(data.shape[0], -1, data.shape[-1])  # components and receivers flat
    # Few traces are drawn as wiggles (an image would interpolate between them).
    if args.shot is None:
        ax = plots.radargram(data[:, args.receiver], dt, xlabel="shot",
                             title=f"B-scan, receiver {args.receiver}")
    else:
        ax = plots.radargram(data[args.shot], dt, xlabel="receiver", title=f"shot {args.shot}")
    print(f"wrote {plots.save(ax, args.out)}")
    return 0


def _export(args) -> int:
    from .jobs.export import write_segy

    out, dt, spacing = _job_data(args.file)
    data = out["receiver_data"]
    if data.ndim == 4:
        data = data[:, args.component]
    path = write_segy(args.segy, data, dt, out["source_location"], out["receiver_location"],
                      spacing, note=f"from {args.file}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
