"""CUDA graphs for forward runs (``experimental_cuda_graph=True``).

Small and medium grids are launch-bound on a GPU: a step of a 512^2 TM2D grid
or a 64^3 3-D grid takes about as long as launching its three kernels. A
forward run with graphs captures the launches of a chunk of steps once and
replays them.

The rules (docs/performance.md):

- Chunks end where a forward callback runs (``callback_frequency`` steps), or
  the whole forward pass is one chunk without a callback; a chunk longer than
  :data:`MAX_STEPS_PER_GRAPH` steps is captured as several graphs.
- A graph holds raw pointers, so it comes with its own buffers: the cache maps
  a run's layout (system, dtype, stencil, grid and CPML geometry, shots,
  sources, receivers and components, chunking, device) to the graphs and the
  device buffers they read and write. A compatible later call copies its
  models, sources and initial state into those buffers and replays the same
  graphs; receiver data land in the same fixed buffer. The cache is bounded
  (LRU, :func:`set_cuda_graph_cache_size`), thread-safe, cleared by
  :func:`clear_cuda_graph_cache` and reported by :func:`cuda_graph_cache_info`.
- Callbacks run between replays on the cached buffers (live): in-place edits
  act on the following steps. Replacing an array of the callback state (or
  changing its shape) would leave the graph pointing at the old storage, so it
  raises.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .params import members

MAX_STEPS_PER_GRAPH = 2000
"""Steps per captured graph at most (3 kernel nodes per step)."""

_lock = threading.RLock()
_cache: OrderedDict = OrderedDict()
_max_entries = 8


def graph_chunks(nt_internal: int, callback_frequency: int, has_callback: bool) -> list:
    """Step ranges ``[t0, t1)``, one per graph: callback chunks (or the whole
    run), each split into pieces of at most MAX_STEPS_PER_GRAPH steps."""
    size = callback_frequency if has_callback else max(nt_internal, 1)
    out = []
    for t0 in range(0, nt_internal, size):
        t1 = min(t0 + size, nt_internal)
        for a in range(t0, t1, MAX_STEPS_PER_GRAPH):
            out.append((a, min(a + MAX_STEPS_PER_GRAPH, t1)))
    return out


def graph_key(plan, geometry: dict, chunks: list, device: str, device_id: int) -> tuple:
    """What makes two runs able to share graphs and buffers."""
    skip = {"snap_t0", "snap_interval", "snap_bf16", "rdz", "rdy", "rdx"}
    geo = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                       for k, v in geometry.items() if k not in skip))
    return (device, device_id, plan.kind, plan.dtype, plan.order,
            tuple(a.n_padded for a in plan.axes), geo, tuple(chunks))


@dataclass
class GraphEntry:
    """Cached graphs of one layout with the buffers they point at."""

    backend: object
    buffers: object
    graphs: dict = field(default_factory=dict)  # t0 -> captured graph
    replays: int = 0
    lock: object = field(default_factory=threading.Lock)  # one run at a time


def lookup(key):
    with _lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
        return entry


def store(key, entry: GraphEntry) -> None:
    with _lock:
        _cache[key] = entry
        _cache.move_to_end(key)
        while len(_cache) > _max_entries:
            _cache.popitem(last=False)


def clear_cuda_graph_cache() -> None:
    """Drop every cached graph and its buffers."""
    with _lock:
        _cache.clear()


def cuda_graph_cache_info() -> dict:
    """Entries, their limit, the graphs they hold and the replays so far."""
    with _lock:
        return dict(entries=len(_cache), max_entries=_max_entries,
                    graphs=sum(len(e.graphs) for e in _cache.values()),
                    replays=sum(e.replays for e in _cache.values()))


def set_cuda_graph_cache_size(entries: int) -> None:
    """Bound the cache to ``entries`` layouts (least recently used dropped)."""
    global _max_entries
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
        raise ValueError(f"the cache size must be an int >= 0, got {entries!r}")
    with _lock:
        _max_entries = entries
        while len(_cache) > _max_entries:
            _cache.popitem(last=False)


def refresh(entry: GraphEntry, host_buffers, kind: str) -> None:
    """Copy a new call's inputs (models, sources, initial state, zeroed data)
    into the cached buffers, which keep their storage."""
    memory = entry.backend.memory
    for name, _, pointer, _ in members(kind):
        host = getattr(host_buffers, name, None)
        if not pointer or not isinstance(host, np.ndarray):
            continue
        memory.upload(getattr(entry.buffers, name), host)
    entry.buffers.geometry.update(host_buffers.geometry)
    entry.buffers.models = host_buffers.models


def check_unchanged(before: dict, after) -> None:
    """Raise if a callback replaced or reshaped an array the graphs use
    (``before``: name -> (array, shape); ``after``: name -> array now)."""
    for name, (array, shape) in before.items():
        now = after.get(name) if hasattr(after, "get") else getattr(after, name, None)
        if now is not array or now.shape != shape:
            raise RuntimeError(
                f"the callback replaced or resized {name!r}; with experimental_cuda_graph "
                "the captured kernels keep pointing at the original storage. Edit the "
                "arrays in place (state.get_wavefield(...)[...] = ...) instead")


def new_entry(backend_factory, plan, host_buffers) -> GraphEntry:
    backend = backend_factory(plan, host_buffers)  # adopts the buffers into its memory
    return GraphEntry(backend=backend, buffers=host_buffers)


def run_chunks(entry: GraphEntry, chunks: list, callback_at, names: tuple) -> None:
    """Replay (capturing on first use) the graph of every chunk, calling
    ``callback_at(t0)`` before the chunks where a callback is due."""
    backend, b = entry.backend, entry.buffers
    watched = {n: (getattr(b, n), getattr(b, n).shape) for n in names}
    for t0, t1 in chunks:
        callback_at(t0)
        check_unchanged(watched, b)
        graph = entry.graphs.get(t0)
        if graph is None:
            graph = entry.graphs[t0] = backend.capture(t0, t1 - t0)
        backend.replay(graph)
        entry.replays += 1
    backend.synchronize()


__all__ = ["MAX_STEPS_PER_GRAPH", "graph_chunks", "graph_key", "clear_cuda_graph_cache",
           "cuda_graph_cache_info", "set_cuda_graph_cache_size"]
