"""Cost of the second-order operators of ``wavecore.tm2d`` (the linearized run
``jvp``, ``second_vjp``, the Gauss-Newton and the full Hessian products)
against the forward, side by side with TIDE 0.1.2's ``borntm`` and
``maxwelltm_hvp``.

Usage::

    python bench/bench_second_order.py             # the target case (~3 min with TIDE)
    python bench/bench_second_order.py --quick     # tiny grid, no TIDE (a test)
    python bench/bench_second_order.py --debye 2   # the same in a 2-pole Debye medium

What is measured (best of ``--repeats`` interleaved rounds after a warm-up; the
first calls of each operation in a fresh interpreter are reported apart)
  * forward: ``tm2d`` without gradients; fwd+grad: ``tm2d(requires_grad=
    ("epsilon", "sigma"))`` then ``vjp`` (device storage, k = 1, no compression);
  * store: the storing forward alone; jvp: ``result.jvp(epsilon=, sigma=)`` on a
    kept run (the tangent sweep over the stored snapshots); GN product:
    ``inversion.gauss_newton_hvp`` on a kept run (one jvp and one vjp, L2);
    second_vjp: ``result.second_vjp(v, c)`` on a kept run (three sweeps); full
    HVP: ``inversion.hvp`` on a kept run (the same three sweeps, L2);
  * Born from scratch = store + jvp, GN HVP from scratch = store + jvp + vjp,
    full HVP from scratch = store + full HVP: what TIDE's ``borntm``
    (background and scattered fields together) and ``maxwelltm_hvp``
    (``hessian_mode="gauss_newton"``: forward, tangent, adjoint; ``"full"``:
    its fused incremental adjoint) compute per call. TIDE runs in its own interpreter with
    ``torch.set_flush_denormal(True)`` and its native CPU backend; "diff" checks
    that both computed the same J v (max |TIDE - wavecore| / max |wavecore|).

Model: ``bench_tm2d.make_problem`` (two layers, 1 cm cells, 20-cell CPML),
300 x 300, 4 shots, stencil 4, float32, 2 threads; directions: smooth random
fields (a few percent of epsilon and sigma). ``--debye P``: the model gets P
Debye poles everywhere (delta_epsilon 2, tau from 1e-10 to 1e-9 s); TIDE has no
Debye Hessian products, so it is left out. Results go to
bench/results/second_order_<cpu>_<date>[_debye][_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from bench_tm2d import (DX, FREQ, PML, cpu_slug, machine_info, make_problem,  # noqa: E402
                        markdown_table, save_results)
from wavecore.inversion import gauss_newton_hvp, hvp  # noqa: E402
from wavecore.testing.tide import tide_python  # noqa: E402

NAMES = ("epsilon", "sigma")

TIDE_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
torch.set_flush_denormal(True)
torch.set_num_threads(int(sys.argv[3]))
from tide.maxwell.tm2d import maxwelltm, maxwelltm_hvp
from tide.maxwell.tm2d_born import borntm
d = {k: torch.from_numpy(v) for k, v in np.load(sys.argv[1]).items()}
o = json.loads(sys.argv[4])
common = (d["eps"], d["sig"], d["mu"], o["dx"], o["dt"], d["amp"], d["src"], d["rec"])
kw = dict(stencil=o["stencil"], pml_width=o["pml"], n_threads=int(sys.argv[3]))
calls = {
    "forward": lambda: maxwelltm(*common, **kw),
    "born": lambda: borntm(*common, depsilon=d["de"], dsigma=d["ds"], **kw),
    # maxwelltm_hvp takes no n_threads (torch.set_num_threads above holds).
    "gn_hvp": lambda: maxwelltm_hvp(*common, d["obs"], vepsilon=d["de"], vsigma=d["ds"],
                                    hessian_mode="gauss_newton", stencil=o["stencil"],
                                    pml_width=o["pml"]),
    "full_hvp": lambda: maxwelltm_hvp(*common, d["obs"], vepsilon=d["de"], vsigma=d["ds"],
                                      hessian_mode="full", stencil=o["stencil"],
                                      pml_width=o["pml"]),
}
out, born = {}, None
for name, call in calls.items():
    times = []
    for _ in range(o["repeat"]):
        start = time.perf_counter()
        if name in ("gn_hvp", "full_hvp"):  # they differentiate inside
            r = call()
        else:
            with torch.no_grad():
                r = call()
        times.append(time.perf_counter() - start)
        if name == "born":
            born = r[-1].numpy()
    out[name] = times
np.savez(sys.argv[2], born_data=np.moveaxis(born, 0, -1), **{k: np.array(v) for k, v in out.items()})
"""


def smooth(shape, seed, scale):
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415

    field = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 5.0)
    return scale * field / np.abs(field).max()


def setup(n, shots, nt, threads, poles=0):
    p = make_problem(n, shots, np.float32)
    amp = (wavecore.ricker(FREQ, nt, p["dt"]) * np.ones((shots, 1, 1))).astype(np.float32)
    args = (p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"])
    kw = dict(stencil=4, pml_width=PML, n_threads=threads)
    if poles:
        tau = np.logspace(-10, -9, poles)[:, None, None] * np.ones((poles, n, n))
        kw["dispersion"] = wavecore.Debye(np.full((poles, n, n), 2.0, np.float32),
                                          tau.astype(np.float32))
    v = {"epsilon": smooth((n, n), 1, 0.3).astype(np.float32),
         "sigma": smooth((n, n), 2, 5e-4).astype(np.float32)}
    return p, amp, args, kw, v


def operations(args, kw, v, observed):
    """name -> callable; each returns something to keep alive until timed."""
    def forward():
        return wavecore.tm2d(*args, **kw).receiver_data

    def store():
        return wavecore.tm2d(*args, requires_grad=NAMES, **kw)

    def fwd_grad():
        r = store()
        return r.vjp(r.receiver_data)

    def kept():  # a kept run for the operators (not timed)
        return store()

    return forward, store, fwd_grad, kept


def timed(call):
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def measure(args, kw, v, observed, repeats):
    forward, store, fwd_grad, kept = operations(args, kw, v, observed)
    run = kept()
    rows = {k: [] for k in ("forward", "fwd+grad", "store", "jvp", "GN product", "second_vjp",
                            "full HVP")}
    c = np.random.default_rng(3).standard_normal(observed.shape).astype(observed.dtype)
    jv = None
    for r in range(repeats + 1):  # round 0: warm-up
        t = {"forward": timed(forward)[0], "fwd+grad": timed(fwd_grad)[0],
             "store": timed(store)[0]}
        t["jvp"], jv = timed(lambda: run.jvp(**v, keep=True))
        t["GN product"] = timed(lambda: gauss_newton_hvp(run, v, observed))[0]
        t["second_vjp"] = timed(lambda: run.second_vjp(v, c, keep=True))[0]
        t["full HVP"] = timed(lambda: hvp(run, v, observed))[0]
        if r:
            for k, value in t.items():
                rows[k].append(value)
    run.close()
    return {k: min(x) for k, x in rows.items()}, jv


def first_calls(c):
    """Each operation's first call in a fresh interpreter."""
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(c)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(c):
    _, _, args, kw, v = setup(c["n"], c["shots"], c["nt"], c["threads"], c["debye"])
    observed = np.zeros((c["shots"], len(make_problem(c["n"], c["shots"], np.float32)["rec"][0]),
                         c["nt"]), np.float32)
    forward, store, _, _ = operations(args, kw, v, observed)
    t = {"forward": timed(forward)[0]}
    t["store"], run = timed(store)
    t["jvp"] = timed(lambda: run.jvp(**v, keep=True))[0]
    t["GN product"] = timed(lambda: gauss_newton_hvp(run, v, observed))[0]
    t["full HVP"] = timed(lambda: hvp(run, v, observed))[0]
    print(json.dumps(t))


def tide(p, amp, v, observed, c):
    import tempfile  # noqa: PLC0415

    python = tide_python()
    if python is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, eps=p["eps"], sig=p["sig"], mu=p["mu"], amp=amp, src=p["src"],
                 rec=p["rec"], de=v["epsilon"], ds=v["sigma"],
                 obs=np.moveaxis(observed, -1, 0).copy())
        opts = dict(dx=[DX, DX], dt=p["dt"], stencil=4, pml=PML, repeat=c["repeats"] + 1)
        subprocess.run([python, "-c", TIDE_SCRIPT, str(src), str(out), str(c["threads"]),
                        json.dumps(opts)], check=True)
        with np.load(out) as z:
            names = ("forward", "born", "gn_hvp", "full_hvp")
            return {"first": {k: float(z[k][0]) for k in names},
                    "best": {k: float(z[k][1:].min()) for k in names},
                    "born": z["born_data"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                    help="results folder")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--nt", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-tide", action="store_true")
    ap.add_argument("--debye", type=int, default=0, metavar="P",
                    help="P Debye poles in the model (no TIDE)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    if a.quick:
        a.n, a.shots, a.nt, a.repeats, a.no_tide = 60, 2, 60, 1, True
    c = dict(n=a.n, shots=a.shots, nt=a.nt, threads=a.threads, repeats=a.repeats,
             debye=a.debye)
    p, amp, args, kw, v = setup(a.n, a.shots, a.nt, a.threads, a.debye)
    observed = np.zeros((a.shots, p["rec"].shape[1], a.nt), np.float32)
    best, jv = measure(args, kw, v, observed, a.repeats)
    first = first_calls(c)
    peer = None if a.no_tide or a.debye else tide(p, amp, v, observed, c)
    born = best["store"] + best["jvp"]
    gn = best["store"] + best["GN product"]
    full = best["store"] + best["full HVP"]
    fwd, fg = best["forward"], best["fwd+grad"]
    rows = [[k, f"{first[k]:.3f}" if k in first else "", f"{best[k]:.3f}",
             f"{best[k] / fwd:.2f}x"] for k in best]
    rows += [["Born from scratch (store + jvp)", "", f"{born:.3f}", f"{born / fwd:.2f}x"],
             ["GN HVP from scratch (store + GN product)", "", f"{gn:.3f}", f"{gn / fwd:.2f}x"],
             ["full HVP from scratch (store + full HVP)", "", f"{full:.3f}",
              f"{full / fwd:.2f}x"]]
    targets = [("jvp <= 2.2x our forward (the tangent sweep on kept snapshots)",
                f"{best['jvp'] / fwd:.2f}x", best["jvp"] / fwd <= 2.2),
               ("Born from scratch <= 2.2x our forward", f"{born / fwd:.2f}x", born / fwd <= 2.2),
               ("full HVP on kept snapshots <= 2x our forward+gradient",
                f"{best['full HVP'] / fg:.2f}x", best["full HVP"] / fg <= 2),
               ("full HVP from scratch <= 2x our forward+gradient", f"{full / fg:.2f}x",
                full / fg <= 2)]
    if peer:
        diff = float(np.abs(peer["born"] - jv).max() / np.abs(jv).max())
        tb, th, tf = peer["best"]["born"], peer["best"]["gn_hvp"], peer["best"]["full_hvp"]
        rows += [["TIDE forward", f"{peer['first']['forward']:.3f}",
                  f"{peer['best']['forward']:.3f}", f"{peer['best']['forward'] / fwd:.2f}x"],
                 ["TIDE borntm", f"{peer['first']['born']:.3f}", f"{tb:.3f}",
                  f"{tb / fwd:.2f}x"],
                 ["TIDE maxwelltm_hvp (gauss_newton)", f"{peer['first']['gn_hvp']:.3f}",
                  f"{th:.3f}", f"{th / fwd:.2f}x"],
                 ["TIDE maxwelltm_hvp (full)", f"{peer['first']['full_hvp']:.3f}",
                  f"{tf:.3f}", f"{tf / fwd:.2f}x"]]
        jvp, fh = best["jvp"], best["full HVP"]
        targets += [("jvp on kept snapshots >= 3x faster than TIDE borntm",
                     f"{tb / jvp:.2f}x (J v diff {diff:.1e})", tb / jvp >= 3),
                    ("Born from scratch >= 3x faster than TIDE borntm", f"{tb / born:.2f}x",
                     tb / born >= 3),
                    ("full HVP on kept snapshots >= 3x faster than TIDE maxwelltm_hvp(full)",
                     f"{tf / fh:.2f}x", tf / fh >= 3),
                    ("GN HVP >= 3x faster than TIDE maxwelltm_hvp(gauss_newton)",
                     f"{th / gn:.2f}x", th / gn >= 3),
                    ("full HVP from scratch >= 3x faster than TIDE maxwelltm_hvp(full)",
                     f"{tf / full:.2f}x", tf / full >= 3)]
    meta = machine_info()
    meta["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    medium = f", {a.debye}-pole Debye medium" if a.debye else ""
    lines = [f"# Second-order operators, tm2d {a.n} x {a.n}{medium}, {a.shots} shots, "
             f"{a.nt} steps, stencil 4, float32, {a.threads} threads", "",
             f"{meta['cpu']} ({meta['cores']} cores), {meta['date']}, commit {meta['git']}", "",
             *markdown_table(["operation", "first call (s)", "best (s)", "/ our forward"], rows),
             "", "## Targets", ""]
    word = {True: "met", False: "NOT met", None: "not measured"}
    lines += [f"- {t}: {value} ({word[ok]})" for t, value, ok in targets]
    print("\n".join(lines))
    stem = (f"second_order_{cpu_slug(meta)}_{meta['date'][:10]}" + ("_debye" if a.debye else "")
            + ("_quick" if a.quick else ""))
    record = dict(meta=meta, config=c, first=first, best=best,
                  tide=None if not peer else {k: peer[k] for k in ("first", "best")},
                  targets=[dict(target=t, value=v_, passed=ok) for t, v_, ok in targets])
    path = save_results(a.out, stem, lines, record)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
