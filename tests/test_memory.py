"""Host buffers: one zeroed, huge-page aligned block for a run's many arrays."""

import numpy as np

import wavecore
from wavecore.memory import HUGE_PAGE, zeros_block


def test_zeros_block_carves_disjoint_aligned_arrays():
    shapes = {"a": (3, 5, 7), "b": (11,), "c": (2, 1000), "empty": (0, 4)}
    arrays = zeros_block(shapes, np.float32)
    assert list(arrays) == list(shapes)
    base = min(a.ctypes.data for a in arrays.values() if a.size)
    assert base % HUGE_PAGE == 0
    for name, array in arrays.items():
        assert array.shape == shapes[name] and array.dtype == np.float32
        assert array.flags.c_contiguous and array.flags.writeable
        assert array.size == 0 or array.ctypes.data % 64 == 0
        assert not array.any()
    for k, name in enumerate(shapes):  # writes stay in their own array
        arrays[name][...] = k + 1
    for k, name in enumerate(shapes):
        assert (arrays[name] == k + 1).all(), name


def test_runs_allocate_their_fields_from_one_block():
    shape = (6, 7, 8)
    res = wavecore.maxwell3d(np.full(shape, 4.0), np.zeros(shape), np.ones(shape),
                             0.01, 1e-11, np.ones((1, 1, 5)), [[[3, 3, 3]]], [[[2, 3, 3]]],
                             pml_width=2)
    def owner(a):
        while a.base is not None:
            a = a.base
        return id(a)

    # one allocation behind all fields and CPML memories
    assert len(res.final_state) == 18
    assert len({owner(a) for a in res.final_state.values()}) == 1
