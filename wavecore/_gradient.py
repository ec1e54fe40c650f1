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
from ._sweeps import (ADJOINT, ADJOINT_KEEP, SECOND_ADJOINT, TANGENT, TANGENT_IMAGE,
                      detach_snapshots, run_sweep)
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
        self._give_back = None  # returns the adjoint buffers' pool block (_allocate)

    # -- public -------------------------------------------------------------------
    def vjp(self, grad_receiver_data, *, keep: bool = False, backward_callback=None
            ) -> Gradients:
        self._check_open()
        g = self._receiver_gradient(to_numpy(from_dlpack_like(grad_receiver_data)))
        try:
            self._allocate(g)
            self._reverse(backward_callback)
            return self._to_caller(self._chain_rule())
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
        self._check_open()
        model, amplitude = self._model_directions(directions, "jvp")  # bad input frees nothing
        try:
            tangent = self._coefficient_tangents(model)
            data, _ = self._tangent_run(self._kernel_directions(tangent, increments=True),
                                        self._source_tangent(amplitude, tangent), callback)
            return to_cupy(data) if self.cupy_io else data
        except BaseException:
            self.close()
            raise
        finally:
            if not keep:
                self.close()

    def second_vjp(self, directions: dict, cotangent, *, keep: bool = False,
                   vjp_cotangent=None, callback=None) -> Gradients:
        """grad_m <cotangent, J(m) v> along ``directions`` (the second-order
        adjoint: three sweeps over the stored snapshots, wavecore._sweeps), plus
        ``vjp(vjp_cotangent)`` when given: an array, or a callable of ``J v``
        (the second sweep's receiver data) returning it. It rides on the last
        sweep, and the second sweep is the tangent run: a full Hessian product
        ``vjp(H J v) + second_vjp(v, g)`` in three sweeps instead of five.
        ``callback(state)`` runs in all three sweeps (``state.sweep`` says which)."""
        self._check_open()
        model, amplitude = self._model_directions(directions, "second_vjp")
        c = self._receiver_gradient(to_numpy(from_dlpack_like(cotangent)), "cotangent")
        extra = vjp_cotangent
        if extra is not None and not callable(extra):
            extra = self._receiver_gradient(to_numpy(from_dlpack_like(extra)), "vjp_cotangent")
        kept = self._kept_store()  # MemoryError before any work
        try:
            return self._to_caller(self._second_order(model, amplitude, c, extra, kept,
                                                      callback))
        except BaseException:
            self.close()
            raise
        finally:
            kept.close()
            self._release()
            if not keep:
                self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.closed = True

    def _to_caller(self, out: Gradients) -> Gradients:
        """Gradients as the caller's arrays: CuPy when the run's inputs were."""
        if self.cupy_io:
            for name in out._names:
                setattr(out, name, to_cupy(getattr(out, name)))
        return out

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the gradient buffers of this run were freed (vjp, jvp or "
                               "second_vjp without keep=True, or close()); run the forward "
                               "again")

    # -- directions --------------------------------------------------------------------
    def _model_directions(self, directions: dict, operation: str):
        """Validated directions -> ({input: padded float64 model direction},
        the source amplitude's direction on the internal steps or None)."""
        plan, b, material = self.plan, self.b, self.physics.material
        known = (*material.gradient_targets, "source_amplitude")
        unknown = sorted(set(directions) - set(known))
        if unknown:
            raise ValueError(f"{operation} directions {unknown} are not inputs of this run "
                             f"(it takes {', '.join(known)})")
        model = {}
        for name, value in directions.items():
            if name == "source_amplitude" or value is None:
                continue
            value = checks.float_array(to_numpy(from_dlpack_like(value)),
                                       f"{operation} {name}")
            checks.finite(value, f"{operation} {name}")
            lead = b.models[name].shape[:-plan.ndim]  # [B] or [B, P]
            shape = (*lead, *plan.model_shape)
            d = material.model_direction(name, value, plan.model_batched, shape)
            model[name] = np.pad(d, [(0, 0)] * (d.ndim - plan.ndim)
                                 + [a.pad for a in plan.axes], mode="edge")
        return model, self._source_direction(directions.get("source_amplitude"), operation)

    def _source_direction(self, d_amplitude, operation: str):
        """The source amplitude's direction as the kernels' source term sees it
        ([N, n_src, nt_internal] float64: resampled, zero at padding sources), or None."""
        plan, b = self.plan, self.b
        if d_amplitude is None or not plan.n_sources:
            return None
        amp = checks.float_array(to_numpy(from_dlpack_like(d_amplitude)),
                                 f"{operation} source_amplitude")
        checks.finite(amp, f"{operation} source_amplitude")
        if amp.shape != tuple(self.source_shape):
            raise ValueError(f"the direction of 'source_amplitude' must have the shape of "
                             f"source_amplitude {tuple(self.source_shape)}, got {amp.shape}")
        amp = np.broadcast_to(amp.astype(np.float64),
                              (plan.n_models, plan.n_shots, plan.n_sources, plan.nt))
        amp = amp.reshape(plan.n_total_shots, plan.n_sources, plan.nt)
        if plan.step_ratio > 1:
            r = plan.resampling
            amp = upsample(amp, plan.step_ratio, r.freq_taper_frac, r.time_pad_frac,
                           r.time_taper, shift=source_shift(plan.step_ratio))
        if getattr(b, "src_padded", None) is not None:  # padding sources inject nothing
            amp = amp * ~b.src_padded[..., None]
        return amp

    def _coefficient_tangents(self, model: dict) -> dict:
        """{coefficient: float64 padded direction} of the coefficients that move."""
        material = self.physics.material
        if not model:
            return {}
        moving = {c for path in material.active_paths(frozenset(model))
                  for c in path.coefficients}
        tangent = material.tangent(self.b.models, self.plan.inner_dt, model)
        return {c: v for c, v in tangent.items() if c in moving}

    def _kernel_directions(self, tangent: dict, *, increments: bool, fill=()) -> dict:
        """The kernels' ``tan_<coefficient>`` arrays in the run's memory: for a
        tangent sweep on bf16 snapshots (``increments``) the directions of the
        increment and the mean; ``fill`` names coefficients given zero
        directions where they do not move (their hooks must run)."""
        plan, b, material = self.plan, self.b, self.physics.material
        tangent = dict(tangent)
        for c in fill:
            tangent.setdefault(c, np.zeros(getattr(b, c).shape))
        if increments and plan.storage.compression == "bf16" and tangent:
            coefficients = {c: self.memory.to_host(getattr(b, c)) for c in material.coefficients}
            tangent = material.increments_tangent(coefficients, tangent)
        dtype = np.dtype(plan.dtype)
        return {f"tan_{c}": self.memory.adopt(np.ascontiguousarray(v, dtype))
                for c, v in tangent.items()}

    def _at_sources(self, array) -> np.ndarray:
        """A per-model padded array's values at each shot's source cells [N, n_src]."""
        plan = self.plan
        model = np.arange(plan.n_total_shots) // plan.n_shots
        index = self.memory.to_host(self.b.src_index)
        return np.asarray(array).reshape(plan.n_models, -1)[model[:, None], index]

    def _source_tangent(self, amplitude, tangent: dict) -> np.ndarray:
        """The tangent of the source term f = amplitude cb[source] scale: d amplitude
        cb scale + amplitude d cb[source] scale ([N, n_src, nt_internal])."""
        plan, b = self.plan, self.b
        term = np.zeros((plan.n_total_shots, plan.n_sources, plan.nt_internal), np.float64)
        if not plan.n_sources:
            return term.astype(plan.dtype)
        scale = -1.0 / float(np.prod(plan.spacing))
        src = self.physics.material.source_coefficient
        if amplitude is not None:
            cb = self._at_sources(self.memory.to_host(getattr(b, src))).astype(np.float64)
            term += amplitude * (cb[..., None] * scale)
        if src in tangent:
            term += b.src_amplitude.astype(np.float64) * (
                self._at_sources(tangent[src])[..., None] * scale)
        return np.ascontiguousarray(term, dtype=plan.dtype)

    # -- the tangent run -------------------------------------------------------------
    def _tangent_run(self, tangents: dict, source: np.ndarray, callback, kept=None):
        """Run the tangent sweep on a zero scattered state in place of the forward's
        final state (kept aside and put back). Returns its receiver data and,
        with ``kept`` (second order), the coefficient gradients of its scattered
        state imaged against the kept adjoint values (per model, float64)."""
        physics, plan, b, memory = self.physics, self.plan, self.b, self.memory
        coefficients = physics.material.gradient_coefficients(plan.targets) if kept else ()
        grads = {f"grad_{c}": (getattr(b, physics.fields[0]).shape[0], *getattr(b, c).shape[1:])
                 for c in coefficients}
        names = (*physics.state_fields, *physics.memories, "rec_data", "src_term",
                 *tangents, *grads)
        saved = {name: getattr(b, name, None) for name in names}
        try:
            fresh = memory.zeros_many({**{name: getattr(b, name).shape for name in
                                          (*physics.state_fields, *physics.memories,
                                           "rec_data")}, **grads}, np.dtype(plan.dtype))
            for name, array in {**fresh, **tangents, "src_term": memory.adopt(source)}.items():
                setattr(b, name, array)
            sweep = TANGENT_IMAGE if kept else TANGENT
            at = None
            if callback is not None:
                from ._driver import callback_state  # noqa: PLC0415 - a cycle otherwise

                at = lambda t: callback(  # noqa: E731
                    callback_state(physics, plan, b, t, sweep.name))
            run_sweep(sweep, plan, self.backend, b, self.store, at,
                      snapshot_names=physics.all_snapshots, progress=self.progress,
                      label="jvp" if kept is None else "second_vjp 2/3", kept=kept)
            from ._driver import receiver_data  # noqa: PLC0415

            data = receiver_data(plan, b, memory, padded=getattr(b, "rec_padded", None))
            images = {c: self._per_model(getattr(b, f"grad_{c}")) for c in coefficients}
        finally:
            for name, array in saved.items():
                setattr(b, name, array)
        return data, images

    # -- second order ------------------------------------------------------------------
    def _kept_store(self):
        """The store of the adjoint values second order keeps: the snapshots'
        layout and place (mode, chunks, compression), written backward."""
        from dataclasses import replace  # noqa: PLC0415

        from .memory import POOL, format_bytes, host_available  # noqa: PLC0415
        from .storage import SnapshotStore  # noqa: PLC0415

        names = self.physics.kept_names(self.plan.targets)
        counts = tuple(self.physics.material.snapshot_count(n) for n in names)  # poles
        plan = replace(self.store.plan, names=names,
                       counts=counts if any(c != 1 for c in counts) else ())
        have = POOL.counted(host_available())  # the pool's parked blocks serve it too
        if plan.mode == "checkpoint":  # adjoint values cannot be recomputed: all kept,
            # in host memory where they fit, else on disk (chunked like the segments)
            from .storage import _check_disk  # noqa: PLC0415

            mode, path = "cpu", None
            if plan.bytes > have.bytes:
                mode, (path, free) = "disk", _check_disk(plan.path)  # storage_path
                if plan.bytes > free:
                    raise MemoryError(f"second_vjp keeps {plan.bytes / 2**30:.3g} GiB of "
                                      f"adjoint values, which fit neither the "
                                      f"{format_bytes(have.bytes)} of host memory available "
                                      f"nor the {format_bytes(free)} free in {path!r}")
            plan = replace(plan, mode=mode, path=path, schedule=None)
        if plan.mode in ("device", "cpu") and not self.memory.separate \
                and plan.bytes > have.bytes:
            raise MemoryError(f"second_vjp keeps {plan.bytes / 2**30:.3g} GiB of adjoint values "
                              f"beside the snapshots, but only {format_bytes(have.bytes)} is "
                              f"available ({have.source}); use storage_mode='disk', bf16 "
                              "compression or a larger model_gradient_sampling_interval")
        return SnapshotStore(plan, self.plan.dtype, self.memory)

    def _second_order(self, model: dict, amplitude, c, extra, kept, callback=None
                      ) -> Gradients:
        """grad <c, J(m) v> = (through the operator on the scattered state) +
        (through the background) + (the coefficients' curvature), see
        wavecore._sweeps; ``extra`` (or None) drives the last sweep as vjp's
        cotangent does; ``callback`` runs in every sweep."""
        plan, b, physics = self.plan, self.b, self.physics
        material, host = physics.material, self.memory.to_host
        tangent = self._coefficient_tangents(model)

        def backward(sweep):
            return None if callback is None else (
                lambda t: callback(self._callback_state(t, sweep.name)))

        # 1. the adjoint of c, keeping the adjoint values its cells image
        self._allocate(c)
        run_sweep(ADJOINT_KEEP, plan, self.backend, b, self.store, backward(ADJOINT_KEEP),
                  snapshot_names=physics.all_snapshots, progress=self.progress,
                  label="second_vjp 1/3", kept=kept)
        first = self._coefficient_gradients()
        lam_src = host(b.src_grad).astype(np.float64)
        self._release()
        # 2. the tangent along v, its scattered state imaged against the kept values
        jv, operator = self._tangent_run(
            self._kernel_directions(tangent, increments=True,
                                    fill=material.gradient_coefficients(plan.targets)),
            self._source_tangent(amplitude, tangent), callback, kept=kept)
        if amplitude is not None:  # the tangent's source d amplitude cb[source] scale
            self._add_source_term(operator, lam_src, amplitude)
        # 3. the background's adjoint, driven by the kept values along v (and extra)
        if callable(extra):
            extra = self._receiver_gradient(to_numpy(from_dlpack_like(extra(jv))),
                                            "vjp_cotangent")
        grads, mu_src = operator, None
        if tangent or extra is not None:
            self._allocate(np.zeros_like(c) if extra is None else extra)
            directions = self._kernel_directions(tangent, increments=False)
            try:
                for name, array in directions.items():
                    setattr(b, name, array)
                run_sweep(SECOND_ADJOINT, plan, self.backend, b, self.store,
                          backward(SECOND_ADJOINT),
                          snapshot_names=physics.all_snapshots, progress=self.progress,
                          label="second_vjp 3/3", kept=kept)
            finally:
                for name in directions:
                    setattr(b, name, None)
            background = self._coefficient_gradients()
            mu_src = host(b.src_grad).astype(np.float64)
            grads = {k: (v if background[k] is None else background[k] if v is None
                         else v + background[k]) for k, v in operator.items()}
            grads.update({k: v for k, v in background.items() if k not in grads})
        padded = material_gradients(b.models, plan.inner_dt, grads, plan.targets, material)
        if model:
            curvature = material.chain_rule_tangent(b.models, plan.inner_dt, first,
                                                    plan.targets, model)
            padded = {k: v + curvature[k] for k, v in padded.items()}
        source = None
        if "source_amplitude" in plan.targets:
            src = material.source_coefficient
            terms = [] if mu_src is None else [(mu_src, host(getattr(b, src)))]
            if src in tangent:  # the source term's d cb[source] amplitude scale
                terms.append((lam_src, tangent[src]))
            source = self._source_gradient(terms)
        return self._gradients_of(padded, source)

    def _add_source_term(self, grads: dict, src_grad, amplitude) -> None:
        """grad_cb[source] += sum_t src_grad amplitude scale (the source term's
        derivative in its coefficient; in place on the per-model ``grads``)."""
        plan = self.plan
        g_src = grads.get(self.physics.material.source_coefficient)
        if g_src is None or not plan.n_sources:
            return
        scale = -1.0 / float(np.prod(plan.spacing))
        per_source = np.einsum("nst,nst->ns", src_grad, amplitude) * scale
        model = np.broadcast_to((np.arange(plan.n_total_shots) // plan.n_shots)[:, None],
                                per_source.shape)
        np.add.at(g_src.reshape(plan.n_models, -1),
                  (model, self.memory.to_host(self.b.src_index)), per_source)

    # -- steps ----------------------------------------------------------------------
    def _receiver_gradient(self, value, name: str = "grad_receiver_data") -> np.ndarray:
        plan = self.plan
        components = (len(plan.receiver_components),) if plan.component_axis else ()
        expected = (*plan.batch_shape, *components, plan.n_receivers, plan.nt)
        g = checks.float_array(value, name)
        if g.shape != expected:
            raise ValueError(f"{name} must have the shape of receiver_data "
                             f"{expected}, got {g.shape}")
        checks.finite(g, name)
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
        # from the pool of host blocks (mapped pages on a repeated gradient), back in _release
        arrays, self._give_back = memory.zeros_pooled(shapes, dtype)
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
        give_back, self._give_back = self._give_back, None
        if give_back is not None:  # the adjoint buffers' block (a view kept alive stays out)
            give_back()

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
        self._add_source_term(grads, host(b.src_grad).astype(np.float64),
                              b.src_amplitude.astype(np.float64))
        return grads

    def _material_gradients(self) -> dict:
        plan = self.plan
        return material_gradients(self.b.models, plan.inner_dt, self._coefficient_gradients(),
                                  plan.targets, self.physics.material)

    def _chain_rule(self) -> Gradients:
        source = self._source_gradient() if "source_amplitude" in self.plan.targets else None
        return self._gradients_of(self._material_gradients(), source)

    def _gradients_of(self, padded: dict, source) -> Gradients:
        """The user's Gradients from padded model gradients and the source's."""
        plan, material = self.plan, self.physics.material
        dtype = np.dtype(plan.dtype)
        out = Gradients.of(material.gradient_targets)
        for name, value in padded.items():
            grad = material.user_gradient(name, fold_padding(value, plan.axes),
                                          plan.model_batched)
            setattr(out, name, np.array(grad, dtype=dtype, order="C"))  # 0-d stays 0-d
        if source is not None:
            out.source_amplitude = source
        return out

    def _source_gradient(self, terms=None) -> np.ndarray:
        """dJ/d source_amplitude from ``terms``, pairs (dJ/d source term
        [N, n_src, nt_internal], the source coefficient per model): the source
        term is amplitude coefficient[source] scale (default: the adjoint's
        src_grad and the run's own coefficient)."""
        plan, b = self.plan, self.b
        scale = -1.0 / float(np.prod(plan.spacing))
        host = self.memory.to_host
        if terms is None:
            terms = [(host(b.src_grad), host(getattr(b, self.physics.material.source_coefficient)))]
        g = np.zeros((plan.n_total_shots, plan.n_sources, plan.nt_internal))
        for src_grad, coefficient in terms:
            g += np.asarray(src_grad, np.float64) * (
                self._at_sources(coefficient).astype(np.float64)[..., None] * scale)
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

    def _callback_state(self, step: int, sweep: str = "adjoint") -> CallbackState:
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
            is_backward=True, sweep=sweep)
