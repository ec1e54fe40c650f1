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
from ._stepping import StepChunks, progress_bar
from .resampling import sample_receivers_adjoint, source_shift, upsample_adjoint

__all__ = ["GradientContext", "segments", "attach_chunk", "detach_snapshots"]



def segments(plan: Plan, store, with_callbacks: bool) -> list[tuple[int, int]]:
    """Step ranges ``[t0, t1)`` between callbacks and snapshot-chunk boundaries."""
    total = plan.nt_internal
    cuts = {0, total}
    if with_callbacks:
        cuts.update(range(0, total, plan.callback_frequency))
    if store is not None:
        cuts.update(store.chunk_steps(c, total)[0] for c in range(store.plan.n_chunks))
    cuts = sorted(cuts)
    return list(zip(cuts[:-1], cuts[1:]))


def attach_chunk(b, store, c: int, arrays: dict) -> None:
    """Point the buffers' snapshot arrays at chunk ``c``."""
    for name, array in arrays.items():
        setattr(b, f"snap_{name}", array)
    b.geometry["snap_t0"] = store.chunk_steps(c, 1 << 62)[0]


def detach_snapshots(physics, b) -> None:
    for name in physics.all_snapshots:
        setattr(b, f"snap_{name}", None)


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

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.closed = True

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
        detach_snapshots(self.physics, self.b)

    def _reverse(self, callback) -> None:
        plan, b, store = self.plan, self.b, self.store
        current = None
        # Calls of about 0.1 s each (wavecore._stepping): Ctrl-C acts between them.
        bar = progress_bar(self.progress, plan.nt_internal, f"{plan.kind} gradient")
        chunks = StepChunks(bar, self.backend.synchronize)
        try:
            for t0, t1 in reversed(segments(plan, store, callback is not None)):
                if store is not None:
                    c = store.chunk_of_step(t0)
                    if c != current:
                        attach_chunk(b, store, c, store.chunk_for_reading(c))
                        current = c
                chunks.reverse(self.backend.adjoint, t0, t1)
                if callback is not None and t0 % plan.callback_frequency == 0:
                    callback(self._callback_state(t0))
            self.backend.synchronize()
        finally:
            if bar is not None:
                bar.close()

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
