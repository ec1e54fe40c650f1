"""The material law beside Physics (wavecore/_materials.py): the engine asks the
law for its inputs, coefficients, chain rule and gradient paths instead of
spelling them out, so that a new law touches its own file and the kernels."""

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import test_tm2d_gradient as t2d
import wavecore
from wavecore import _driver
from wavecore._maxwell3d import MAXWELL3D
from wavecore._debye import DebyeLaw
from wavecore._materials import NON_DISPERSIVE, GradientPath, NonDispersive
from wavecore.gradients import GRADIENT_TARGETS, Gradients
from wavecore._tm2d import TM2D

PACKAGE = Path(wavecore.__file__).parent

#: Modules that once spelled out the non-dispersive law by hand.
ENGINE = ("_driver.py", "_gradient.py", "gradients.py", "_inputs.py", "torch.py", "jax.py",
          "callbacks.py", "estimates.py", "storage.py", "plan.py", "result.py", "state.py")
LAW_NAMES = {*NON_DISPERSIVE.inputs, *NON_DISPERSIVE.coefficients,
             *(f"grad_{c}" for c in NON_DISPERSIVE.coefficients),
             *(p.name for p in NON_DISPERSIVE.paths)}


def _string_constants(path: Path) -> set[str]:
    """String literals of a module, without docstrings and f-string text."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    in_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                  for v in node.values}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and id(node) not in in_fstring}


@pytest.mark.parametrize("module", ENGINE)
def test_engine_modules_do_not_spell_out_the_law(module):
    assert not _string_constants(PACKAGE / module) & LAW_NAMES


LAWS = (NON_DISPERSIVE, DebyeLaw(("ey",), 2))


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_gradient_paths_cover_the_inputs_and_coefficients(law):
    assert sorted(c for p in law.paths for c in p.coefficients) == sorted(law.coefficients)
    assert {i for p in law.paths for i in p.inputs} == set(law.inputs)
    assert law.source_coefficient in law.coefficients
    for system in (TM2D, MAXWELL3D):
        assert {p.name for p in law.paths} <= set(system.snapshots)


def test_non_dispersive_paths():
    law = NON_DISPERSIVE
    assert sorted(i for p in law.paths for i in p.inputs) == sorted(law.inputs)  # once each
    assert set(TM2D.snapshots) - {p.name for p in law.paths} == {"debye"}
    assert law.gradient_coefficients({"mu"}) == ("cq",)
    assert TM2D.snapshot_names(frozenset({"sigma"})) == tuple(TM2D.snapshots["ca_cb"])
    assert TM2D.snapshot_names(frozenset({"source_amplitude"})) == ()


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_chain_rule_is_the_derivative_of_the_coefficients(law):
    dt = 1e-11
    rng = np.random.default_rng(0)
    x = {"epsilon": 1 + 9 * rng.random((1, 4, 5)), "sigma": 0.05 * rng.random((1, 4, 5)),
         "mu": 1 + rng.random((1, 4, 5))}
    if law.pole_inputs:  # two poles per cell, [B, P, *shape]
        x.update(delta_epsilon=1 + 5 * rng.random((1, 2, 4, 5)),
                 tau=10.0 ** rng.uniform(-10.5, -9, (1, 2, 4, 5)))
    shapes = {c: a.shape for c, a in law.coefficients_of(x, dt, np.float64).items()}
    w = {c: rng.standard_normal(shapes[c]) for c in law.coefficients}

    def change(plus, minus):  # of sum(w * coefficients), coefficient by coefficient
        a, b = (law.coefficients_of(v, dt, np.float64) for v in (plus, minus))
        return sum(float(np.sum(w[c] * (a[c] - b[c]))) for c in law.coefficients)

    grads = law.chain_rule(x, dt, w, frozenset(law.inputs))
    for name in law.inputs:
        d = rng.standard_normal(x[name].shape)
        h = 1e-6 * float(np.abs(x[name]).max())  # relative to the input's scale
        plus, minus = {**x, name: x[name] + h * d}, {**x, name: x[name] - h * d}
        numeric = change(plus, minus) / (2 * h)
        assert numeric == pytest.approx(float(np.sum(grads[name] * d)), rel=1e-6), name


def _law_inputs(law, rng, batch=2):
    """Padded inputs of ``law``: [B, 4, 5], the poles [B, 2, 4, 5]."""
    x = {"epsilon": 1 + 9 * rng.random((batch, 4, 5)),
         "sigma": 0.05 * rng.random((batch, 4, 5)), "mu": 1 + rng.random((batch, 4, 5))}
    if law.pole_inputs:
        x.update(delta_epsilon=1 + 5 * rng.random((batch, 2, 4, 5)),
                 tau=10.0 ** rng.uniform(-10.5, -9, (batch, 2, 4, 5)))
    return x


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_coefficient_tangents_are_the_transpose_of_the_chain_rule(law):
    """<tangent(v), w> = <v, chain_rule(w)> over every input and coefficient: the
    linearized run's coefficient perturbations are the adjoint of the gradients'
    chain rule (the dot-product identity of the Born operator rests on it)."""
    dt, rng = 1e-11, np.random.default_rng(3)
    x = _law_inputs(law, rng)
    v = {name: rng.standard_normal(a.shape) for name, a in x.items()}
    coefficients = law.coefficients_of(x, dt, np.float64)
    w = {c: rng.standard_normal(a.shape) for c, a in coefficients.items()}
    tangent = law.tangent(x, dt, v)
    assert {c: a.shape for c, a in tangent.items()} == {c: a.shape
                                                        for c, a in coefficients.items()}
    grads = law.chain_rule(x, dt, w, frozenset(law.inputs))
    forward = sum(float(np.vdot(tangent[c], w[c])) for c in law.coefficients)
    reverse = sum(float(np.vdot(v[n], grads[n])) for n in law.inputs)
    assert abs(forward - reverse) <= 1e-12 * abs(reverse), (forward, reverse)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_coefficient_tangents_are_the_derivative_of_the_coefficients(law):
    dt, rng = 1e-11, np.random.default_rng(4)
    x = _law_inputs(law, rng, batch=1)
    for name in law.inputs:  # one input at a time; the others do not move
        d = rng.standard_normal(x[name].shape)
        h = 1e-6 * float(np.abs(x[name]).max())
        plus, minus = ({**x, name: x[name] + s * h * d} for s in (1, -1))
        a, b = (law.coefficients_of(y, dt, np.float64) for y in (plus, minus))
        tangent = law.tangent(x, dt, {name: d})
        for c in law.coefficients:
            numeric = (a[c] - b[c]) / (2 * h)
            scale = max(float(np.abs(numeric).max()), float(np.abs(tangent[c]).max()))
            if scale == 0:
                continue  # the coefficient does not depend on this input
            assert np.abs(tangent[c] - numeric).max() <= 1e-6 * scale, (name, c)
    with pytest.raises(ValueError, match=r"directions \['eps'\] are not inputs"):
        law.tangent(x, dt, {"eps": x["epsilon"]})


class DoubledMu(NonDispersive):
    """A toy law: the permeability is twice the given array."""

    name = "doubled-mu"

    @staticmethod
    def _doubled(arrays):
        return {**arrays, "mu": 2 * arrays["mu"]}

    def max_velocity(self, arrays):
        return super().max_velocity(self._doubled(arrays))

    def coefficients_of(self, padded, dt, dtype):
        return super().coefficients_of(self._doubled(padded), dt, dtype)

    def chain_rule(self, padded, dt, grads, targets):
        out = super().chain_rule(self._doubled(padded), dt, grads, targets)
        if "mu" in out:
            out["mu"] = 2 * out["mu"]
        return out


def test_a_new_law_runs_through_the_driver_and_its_chain_rule():
    p = t2d.problem(nz=9, nx=10, nt=20)
    targets = ("epsilon", "sigma", "mu")
    toy = _driver.run(replace(TM2D, material=DoubledMu()), **p, python_backend=True,
                      requires_grad=targets)
    same = wavecore.tm2d(**{**p, "mu": 2 * p["mu"]}, python_backend=True,
                         requires_grad=targets)
    np.testing.assert_array_equal(toy.receiver_data, same.receiver_data)
    g = np.random.default_rng(1).standard_normal(toy.receiver_data.shape)
    a, b = toy.vjp(g), same.vjp(g)
    np.testing.assert_array_equal(a.epsilon, b.epsilon)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    np.testing.assert_array_equal(a.mu, 2 * b.mu)


@pytest.mark.parametrize("kind", ("tm2d", "maxwell3d"))
def test_the_cpu_core_takes_the_struct_parsed_from_the_header(kind):
    """The Cython core does not mirror the kernel struct by hand: it takes the
    struct that wavecore._gpu.params packs with the layout parsed from the header
    (as the CUDA kernels do), so a new member needs no Cython edit; a required
    buffer that is missing is refused by name before the loop runs."""
    from wavecore.backends import backend_class  # noqa: PLC0415

    text = (PACKAGE / "_cpu" / f"_{kind}.pyx").read_text()
    assert "pack_params(" in text and "_fill(" not in text
    system = TM2D if kind == "tm2d" else MAXWELL3D
    p = t2d.problem(nz=9, nx=10, nt=4)
    if kind == "maxwell3d":
        p = {**p, **{k: np.repeat(p[k][None], 5, 0) for k in ("epsilon", "sigma", "mu")},
             "grid_spacing": 0.01,
             "source_location": np.insert(p["source_location"], 0, 2, axis=-1),
             "receiver_location": np.insert(p["receiver_location"], 0, 2, axis=-1)}
    plan, models, acq, initial = _driver.plan_run(system, **p)
    b = _driver.prepare_buffers(system, plan, models, acq, initial)
    backend = backend_class(kind, "cpu")(plan, b)
    b.cq = None
    with pytest.raises(ValueError, match="'cq' is missing"):
        backend.forward(0, 1)


class WithPolarization(NonDispersive):
    """A toy law with one state array of its own on the ``ey`` grid (the
    reference backend does not update it: it only has to travel with the state)."""

    name = "with-polarization"
    state = {"py": "ey"}


def test_a_law_declares_its_own_state_arrays():
    p = t2d.problem(nz=9, nx=10, nt=12)
    system = replace(TM2D, material=WithPolarization())
    seen = []
    out = _driver.run(system, **p, python_backend=True,
                      forward_callback=lambda s: seen.append(set(s.wavefields)))
    plain = wavecore.tm2d(**p, python_backend=True)
    assert all("py" in names for names in seen) and seen
    assert set(out.final_state) == {*plain.final_state, "py"}
    assert out.final_state["py"].shape == out.final_state["ey"].shape
    assert out.final_state["py"].dtype == out.final_state["ey"].dtype
    assert not out.final_state["py"].any()
    np.testing.assert_array_equal(out.receiver_data, plain.receiver_data)
    # counted with the fields by the memory estimate
    per_field = plain.memory.fields // len(TM2D.fields)
    assert out.memory.fields == plain.memory.fields + per_field
    assert out.memory.cpml_memories == plain.memory.cpml_memories
    # continuation: the law's state goes in through initial_state and comes back
    rng = np.random.default_rng(2)
    start = {k: rng.standard_normal(v.shape).astype(v.dtype)
             for k, v in out.final_state.items()}
    again = _driver.run(system, **p, python_backend=True, initial_state=start)
    np.testing.assert_array_equal(again.final_state["py"], start["py"])
    with pytest.raises(ValueError, match="unknown names"):
        wavecore.tm2d(**p, python_backend=True, initial_state={"py": start["py"]})
    # the reverse pass carries an adjoint of it (unused by the reference backend)
    toy = _driver.run(system, **p, python_backend=True, requires_grad="epsilon")
    ref = wavecore.tm2d(**p, python_backend=True, requires_grad="epsilon")
    g = np.random.default_rng(3).standard_normal(ref.receiver_data.shape)
    np.testing.assert_array_equal(toy.vjp(g).epsilon, ref.vjp(g).epsilon)
    assert "lam_py" in system.adjoint_names


class RenamedMu(NonDispersive):
    """A toy law whose third input has another name (``nu``): its gradient target
    is ``nu``, not ``mu``."""

    name = "renamed-mu"
    inputs = ("epsilon", "sigma", "nu")
    paths = (NonDispersive.paths[0], GradientPath("cq", ("cq",), ("nu",)))

    @staticmethod
    def _as_mu(arrays):
        out = {k: v for k, v in arrays.items() if k != "nu"}
        return {**out, "mu": arrays["nu"]}

    def check_values(self, arrays):
        super().check_values(self._as_mu(arrays))

    def unit_hints(self, arrays, absolute_looking):
        return super().unit_hints(self._as_mu(arrays), absolute_looking)

    def max_velocity(self, arrays):
        return super().max_velocity(self._as_mu(arrays))

    def coefficients_of(self, padded, dt, dtype):
        return super().coefficients_of(self._as_mu(padded), dt, dtype)

    def chain_rule(self, padded, dt, grads, targets):
        mu_targets = {"mu" if t == "nu" else t for t in targets}
        out = super().chain_rule(self._as_mu(padded), dt, grads, mu_targets)
        if "mu" in out:
            out["nu"] = out.pop("mu")
        return out


def test_a_law_declares_its_own_gradient_targets():
    p = t2d.problem(nz=9, nx=10, nt=12)
    system = replace(TM2D, material=RenamedMu())
    assert RenamedMu().gradient_targets == ("epsilon", "sigma", "nu", "source_amplitude")
    with pytest.raises(ValueError, match=r"unknown names \['mu'\]"):
        _driver.run(system, **p, python_backend=True, requires_grad="mu")
    with pytest.raises(ValueError, match=r"unknown names \['nu'\]"):
        wavecore.tm2d(**p, python_backend=True, requires_grad="nu")
    toy = _driver.run(system, **p, python_backend=True, requires_grad=("nu", "epsilon"))
    ref = wavecore.tm2d(**p, python_backend=True, requires_grad=("mu", "epsilon"))
    g = np.random.default_rng(4).standard_normal(ref.receiver_data.shape)
    a, b = toy.vjp(g), ref.vjp(g)
    np.testing.assert_array_equal(a.nu, b.mu)
    np.testing.assert_array_equal(a.epsilon, b.epsilon)
    assert a.mu is None and a.sigma is None and a.source_amplitude is None
    assert [x is None for x in a] == [False, True, False, True]  # epsilon, sigma, nu, source
    assert len(list(b)) == 4 and b.mu is not None
    # the four fields of today: repr, comparison and iteration unchanged
    plain = Gradients(epsilon=1)
    assert repr(plain) == ("Gradients(epsilon=1, sigma=None, mu=None, "
                           "source_amplitude=None)")
    assert list(plain) == [1, None, None, None] and plain == Gradients(epsilon=1)
    assert Gradients.of(GRADIENT_TARGETS, {"epsilon": 1}) == plain


class Hinted(NonDispersive):
    name = "hinted"
    units = "toy units"

    def unit_hints(self, arrays, absolute_looking):
        return [f"toy hint below {absolute_looking}"]


def test_check_units_asks_the_law():
    p = t2d.problem(nz=9, nx=10, nt=4)
    with pytest.warns(wavecore.UnitWarning, match="toy hint below 0.001"):
        _driver.run(replace(TM2D, material=Hinted()), **p, python_backend=True)
    assert "looks absolute" in NON_DISPERSIVE.unit_hints(
        {"epsilon": np.full(3, 1e-11), "mu": np.ones(3)}, 1e-3)[0]
