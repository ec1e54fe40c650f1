"""The reverse pass of a run (``tm2d``, ``maxwell3d``): adjoint buffers, chunked
transposed steps, backward callbacks and the chain rule to the user's arrays.

A :class:`GradientContext` is kept by a :class:`~wavecore.result.ForwardResult`
run with ``requires_grad``; ``result.vjp(g)`` calls :meth:`GradientContext.vjp`.
"""

from __future__ import annotations

import numpy as np

from . import _checks as checks
from ._xp import from_dlpack_like, to_cupy, to_numpy
from .callbacks import CallbackState
from .gradients import Gradients, fold_padding, material_gradients
from .plan import Plan
from ._sweeps import ADJOINT, TANGENT, detach_snapshots, run_sweep
from .resampling import sample_receivers_adjoint, source_shift, upsample, upsample_adjoint

__all__ = ["GradientContext"]


class GradientContext:
    """What the reverse pass of one forward run needs."""

    def __init__(self, physics, plan: Plan, backend, buffers, store, source_shape,
                 cupy_io: bool = False, progress: bool = False):
        self.physics = physics
        self.plan = plan
        self.backend = backend
        self.b = buffers
        self.store = store
        self.memory = backend.memory
        self.source_shape = source_shape  # the user's source_amplitude shape
        self.cupy_io = cupy_io  # the run's inputs were CuPy arrays: so are the gradients
        self.closed = False
        self.progress = progress  # a tqdm bar over the reverse steps

    # -- public -------------------------------------------------------------------
    def vjp(self, grad_receiver_data, *, keep: bool = False, backward_callback=None
            ) -> Gradients:
        if self.closed:
            raise RuntimeError("the gradient buffers of this run were freed (vjp without "
                               "keep=True, or close()); run the forward again")
        g = self._receiver_gradient(to_numpy(from_dlpack_like(grad_receiver_data)))
        try:
            self._allocate(g)
            self._reverse(backward_callback)
            out = self._chain_rule()
            if self.cupy_io:
                for name in out._names:
                    setattr(out, name, to_cupy(getattr(out, name)))
            return out
        except BaseException:
            self.close()
            raise
        finally:
            self._release()
            if not keep:
                self.close()

    def jvp(self, directions: dict, *, keep: bool = False, callback=None) -> np.ndarray:
        """J v: the receiver data of the tangent (linearized, Born) run along
        ``directions`` ({input: array shaped like the input}), from the stored
        background snapshots (the tangent sweep, wavecore._sweeps)."""
        if self.closed:
            raise RuntimeError("the gradient buffers of this run were freed (vjp or jvp "
                               "without keep=True, or close()); run the forward again")
        tangents, source = self._tangents(directions)  # bad input frees nothing
        try:
            return self._tangent_run(tangents, source, callback)
        except BaseException:
            self.close()
            raise
        finally:
            if not keep:
                self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.closed = True

    # -- the tangent run -------------------------------------------------------------
    def _tangents(self, directions: dict):
        """Validated directions -> (coefficient directions for the kernels
        {tan_<c>: array in the run's memory}, the tangent's source term)."""
        plan, b, material = self.plan, self.b, self.physics.material
        known = (*material.gradient_targets, "source_amplitude")
        unknown = sorted(set(directions) - set(known))
        if unknown:
            raise ValueError(f"jvp directions {unknown} are not inputs of this run "
                             f"(it takes {', '.join(known)})")
        host = self.memory.to_host
        model = {}
        for name, value in directions.items():
            if name == "source_amplitude" or value is None:
                continue
            value = checks.float_array(to_numpy(from_dlpack_like(value)), f"jvp {name}")
            checks.finite(value, f"jvp {name}")
            lead = b.models[name].shape[:-plan.ndim]  # [B] or [B, P]
            shape = (*lead, *plan.model_shape)
            d = material.model_direction(name, value, plan.model_batched, shape)
            model[name] = np.pad(d, [(0, 0)] * (d.ndim - plan.ndim)
                                 + [a.pad for a in plan.axes], mode="edge")
        moving = {c for path in material.active_paths(frozenset(model))
                  for c in path.coefficients}
        coefficients = {c: host(getattr(b, c)) for c in material.coefficients}
        tangent = material.tangent(b.models, plan.inner_dt, model) if model else {}
        tangent = {c: v for c, v in tangent.items() if c in moving}
        source = self._source_tangent(directions.get("source_amplitude"), tangent,
                                      coefficients)
        if plan.storage.compression == "bf16" and tangent:
            tangent = material.increments_tangent(coefficients, tangent)
        dtype = np.dtype(plan.dtype)
        arrays = {f"tan_{c}": self.memory.adopt(np.ascontiguousarray(v, dtype))
                  for c, v in tangent.items()}
        return arrays, source

    def _source_tangent(self, d_amplitude, tangent: dict, coefficients: dict) -> np.ndarray:
        """The tangent of the source term f = amplitude cb[source] scale: d amplitude
        cb scale + amplitude d cb[source] scale ([N, n_src, nt_internal])."""
        plan, b = self.plan, self.b
        dtype = np.dtype(plan.dtype)
        n = plan.n_total_shots
        term = np.zeros((n, plan.n_sources, plan.nt_internal), np.float64)
        if not plan.n_sources:
            return term.astype(dtype)
        scale = -1.0 / float(np.prod(plan.spacing))
        model = np.arange(n) // plan.n_shots
        index = self.memory.to_host(b.src_index)
        src = self.physics.material.source_coefficient
        at = lambda array: array.reshape(plan.n_models, -1)[model[:, None], index]  # noqa: E731
        if d_amplitude is not None:
            amp = checks.float_array(to_numpy(from_dlpack_like(d_amplitude)),
                                     "jvp source_amplitude")
            checks.finite(amp, "jvp source_amplitude")
            if amp.shape != tuple(self.source_shape):
                raise ValueError(f"the direction of 'source_amplitude' must have the shape of "
                                 f"source_amplitude {tuple(self.source_shape)}, got {amp.shape}")
            amp = np.broadcast_to(amp.astype(np.float64),
                                  (plan.n_models, plan.n_shots, plan.n_sources, plan.nt))
            amp = amp.reshape(n, plan.n_sources, plan.nt)
            if plan.step_ratio > 1:
                r = plan.resampling
                amp = upsample(amp, plan.step_ratio, r.freq_taper_frac, r.time_pad_frac,
                               r.time_taper, shift=source_shift(plan.step_ratio))
            if getattr(b, "src_padded", None) is not None:  # padding sources inject nothing
                amp = amp * ~b.src_padded[..., None]
            term += amp * (at(coefficients[src]).astype(np.float64)[..., None] * scale)
        if src in tangent:
            term += b.src_amplitude.astype(np.float64) * (at(tangent[src])[..., None] * scale)
        return np.ascontiguousarray(term, dtype=dtype)

    def _tangent_run(self, tangents: dict, source: np.ndarray, callback) -> np.ndarray:
        """Run the tangent sweep on a zero scattered state in place of the forward's
        final state (kept aside and put back), and return its receiver data."""
        physics, plan, b, memory = self.physics, self.plan, self.b, self.memory
        names = (*physics.state_fields, *physics.memories, "rec_data", "src_term",
                 *tangents)
        kept = {name: getattr(b, name, None) for name in names}
        try:
            fresh = memory.zeros_many({name: getattr(b, name).shape for name in
                                       (*physics.state_fields, *physics.memories,
                                        "rec_data")}, np.dtype(plan.dtype))
            for name, array in {**fresh, **tangents, "src_term": memory.adopt(source)}.items():
                setattr(b, name, array)
            at = None
            if callback is not None:
                from ._driver import callback_state  # noqa: PLC0415 - a cycle otherwise

                at = lambda t: callback(callback_state(physics, plan, b, t))  # noqa: E731
            run_sweep(TANGENT, plan, self.backend, b, self.store, at,
                      snapshot_names=physics.all_snapshots, progress=self.progress,
                      label="jvp")
            from ._driver import receiver_data  # noqa: PLC0415

            data = receiver_data(plan, b, memory, padded=getattr(b, "rec_padded", None))
        finally:
            for name, array in kept.items():
                setattr(b, name, array)
        return to_cupy(data) if self.cupy_io else data

    # -- steps ----------------------------------------------------------------------
    def _receiver_gradient(self, value) -> np.ndarray:
        plan = self.plan
        components = (len(plan.receiver_components),) if plan.component_axis else ()
        expected = (*plan.batch_shape, *components, plan.n_receivers, plan.nt)
        g = checks.float_array(value, "grad_receiver_data")
        if g.shape != expected:
            raise ValueError(f"grad_receiver_data must have the shape of receiver_data "
                             f"{expected}, got {g.shape}")
        checks.finite(g, "grad_receiver_data")
        g = g.astype(plan.dtype, copy=False).reshape(
            plan.n_total_shots, len(plan.receiver_components) * plan.n_receivers, plan.nt)
        padded = getattr(self.b, "rec_padded", None)
        if padded is not None:  # padding receivers inject no adjoint source
            g = g.reshape(plan.n_total_shots, -1, plan.n_receivers, plan.nt) * \
                ~padded[:, None, :, None]
            g = g.reshape(plan.n_total_shots, -1, plan.nt)
        if plan.step_ratio > 1 and g.size:
            g = sample_receivers_adjoint(g, plan.step_ratio, plan.receiver_positions,
                                         plan.resampling.time_taper)
        return np.ascontiguousarray(g, dtype=plan.dtype)

    def _allocate(self, g: np.ndarray) -> None:
        plan, b, physics, memory = self.plan, self.b, self.physics, self.memory
        dtype = np.dtype(plan.dtype)
        full = getattr(b, physics.fields[0]).shape
        size = int(np.prod(full))
        # A tail scratch array is followed by one more zero plane: the 3-D
        # adjoint reads one plane past the last shot.
        tail = size + int(np.prod(full[2:]))
        material = physics.material
        shapes = {
            **{f"lam_{name}": getattr(b, name).shape for name in physics.state_fields},
            **{name: (tail,) if name in physics.tail_scratch else full
               for name in physics.scratch},
            **{f"lam_{name}": getattr(b, name).shape for name in physics.memories},
            # per shot, the coefficient's shape after its model axis (poles and grid)
            **{f"grad_{c}": (full[0], *getattr(b, c).shape[1:])
               for c in material.gradient_coefficients(plan.targets)},
            "src_grad": b.src_term.shape}
        arrays = memory.zeros_many(shapes, dtype)
        for name in physics.tail_scratch:
            arrays[name] = arrays[name][:size].reshape(full)
        for c in material.coefficients:
            setattr(b, f"grad_{c}", None)
        for name, array in arrays.items():
            setattr(b, name, array)
        b.rec_grad = memory.adopt(g)

    def _release(self) -> None:
        grads = tuple(f"grad_{c}" for c in self.physics.material.coefficients)
        for name in (*self.physics.adjoint_names, *self.physics.scratch, *grads,
                     "rec_grad", "src_grad"):
            setattr(self.b, name, None)
        detach_snapshots(self.physics.all_snapshots, self.b)

    def _reverse(self, callback) -> None:
        """The adjoint sweep (wavecore._sweeps), ``callback`` after steps ..., f, 0."""
        at = None if callback is None else (lambda t: callback(self._callback_state(t)))
        run_sweep(ADJOINT, self.plan, self.backend, self.b, self.store, at,
                  snapshot_names=self.physics.all_snapshots, progress=self.progress,
                  label="gradient")

    def _per_model(self, array):
        if array is None:
            return None
        plan = self.plan
        array = self.memory.to_host(array)
        return array.reshape(plan.n_models, plan.n_shots, *array.shape[1:]).sum(
            axis=1, dtype=np.float64)

    def _coefficient_gradients(self) -> dict:
        """The material's coefficient gradients per model (float64; None where not
        accumulated), with the source scaling in the source coefficient."""
        plan, b, material = self.plan, self.b, self.physics.material
        host = self.memory.to_host
        grads = {c: self._per_model(getattr(b, f"grad_{c}")) for c in material.coefficients}
        if plan.storage.compression == "bf16":
            grads = material.from_increments(
                {c: host(getattr(b, c)) for c in material.coefficients}, grads)
        g_src = grads[material.source_coefficient]
        if g_src is not None and plan.n_sources:
            # f = amplitude * cb[source] * scale: d f / d cb = amplitude * scale.
            scale = -1.0 / float(np.prod(plan.spacing))
            per_source = np.einsum("nst,nst->ns",
                                   host(b.src_grad).astype(np.float64),
                                   b.src_amplitude.astype(np.float64)) * scale
            model = np.broadcast_to((np.arange(plan.n_total_shots) // plan.n_shots)[:, None],
                                    b.src_index.shape)
            np.add.at(g_src.reshape(plan.n_models, -1),
                      (model, host(b.src_index)), per_source)
        return grads

    def _material_gradients(self) -> dict:
        plan = self.plan
        return material_gradients(self.b.models, plan.inner_dt, self._coefficient_gradients(),
                                  plan.targets, self.physics.material)

    def _chain_rule(self) -> Gradients:
        plan = self.plan
        dtype = np.dtype(plan.dtype)
        padded = self._material_gradients()
        out = Gradients.of(self.physics.material.gradient_targets)
        material = self.physics.material
        for name, value in padded.items():
            grad = material.user_gradient(name, fold_padding(value, plan.axes),
                                          plan.model_batched)
            setattr(out, name, np.array(grad, dtype=dtype, order="C"))  # 0-d stays 0-d
        if "source_amplitude" in plan.targets:
            out.source_amplitude = self._source_gradient()
        return out

    def _source_gradient(self) -> np.ndarray:
        plan, b = self.plan, self.b
        scale = -1.0 / float(np.prod(plan.spacing))
        model = np.arange(plan.n_total_shots) // plan.n_shots
        host = self.memory.to_host
        coefficient = host(getattr(b, self.physics.material.source_coefficient))
        cb_at_source = coefficient.reshape(plan.n_models, -1)[model[:, None], host(b.src_index)]
        g = host(b.src_grad).astype(np.float64) * (cb_at_source[..., None] * scale)
        if getattr(b, "src_padded", None) is not None:  # padding sources: no gradient
            g[b.src_padded] = 0.0
        if plan.step_ratio > 1:
            r = plan.resampling
            g = upsample_adjoint(g, plan.step_ratio, r.freq_taper_frac, r.time_pad_frac,
                                 r.time_taper, shift=source_shift(plan.step_ratio))
        g = g.reshape(plan.n_models, plan.n_shots, plan.n_sources, plan.nt)
        if len(self.source_shape) == 3:  # shots shared by every model (or unbatched)
            g = g.sum(axis=0)
        return np.ascontiguousarray(g, dtype=plan.dtype)

    def _callback_state(self, step: int) -> CallbackState:
        plan, b = self.plan, self.b
        batched = lambda a: a.reshape(*plan.batch_shape, *a.shape[1:])  # noqa: E731
        names = self.physics.adjoint_names
        models = {k: (v if plan.model_batched else v[0]) for k, v in b.models.items()}
        grads = {k: (v if plan.model_batched else v[0]).astype(plan.dtype) for k, v in
                 self._material_gradients().items()}
        return CallbackState(
            dt=plan.inner_dt, step=step, nt=plan.nt_internal,
            wavefields={k: batched(getattr(b, k)) for k in names}, models=models,
            axes=plan.axes, model_batched=plan.model_batched, gradients=grads,
            is_backward=True)
