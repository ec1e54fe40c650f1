// CPU emulation of the CUDA launch model for wavecore/_gpu/kernels.cu, so that
// CI (which has no GPU) runs the very kernels a GPU runs. The kernels use one
// thread per cell, no shared memory and no synchronization inside a block, so
// running the threads of a grid one after another is an exact emulation.
#pragma once

#include <cstdint>
#include <cstring>

struct dim3 {
  unsigned x, y, z;
};

// The built-in variables of the running (emulated) thread; thread_local, as
// ctypes releases the GIL and several Python threads may launch at once.
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

namespace wc {
namespace emulate {

// Run kernel K over the grid: every block, every thread, one at a time.
template <typename P, void (*K)(P, int64_t)>
void launch(const void* params, int64_t t, const unsigned* grid, const unsigned* block) {
  P p;
  std::memcpy(&p, params, sizeof(P));
  gridDim = {grid[0], grid[1], grid[2]};
  blockDim = {block[0], block[1], block[2]};
  for (unsigned bz = 0; bz < grid[2]; ++bz)
    for (unsigned by = 0; by < grid[1]; ++by)
      for (unsigned bx = 0; bx < grid[0]; ++bx)
        for (unsigned tz = 0; tz < block[2]; ++tz)
          for (unsigned ty = 0; ty < block[1]; ++ty)
            for (unsigned tx = 0; tx < block[0]; ++tx) {
              blockIdx = {bx, by, bz};
              threadIdx = {tx, ty, tz};
              K(p, t);
            }
}

using Launcher = void (*)(const void*, int64_t, const unsigned*, const unsigned*);

struct Entry {
  const char* name;
  Launcher launch;
};

}  // namespace emulate
}  // namespace wc
