// Where a cell update finds its coefficients (ca, cb, cq), shared by the
// systems and backends.
//
// ModelCoefficients reads them from the model arrays at the cell's model index
// (the default, and what every GPU thread does). UniformCoefficients reads the
// values of one cell for every cell of a run with equal coefficients: the CPU
// rows of piecewise-constant models then move no coefficient bytes per cell.
// Both give a cell the same numbers, so results do not depend on which one a
// row used. (UniformCoefficients keeps pointers rather than values: timed on
// the 3-D rows of a 64^3 grid in a single-threaded harness built with GCC 12,
// values captured in the row loop's closure ran ~10 % slower than reading the
// arrays per cell, pointers ~15 % faster.)
#pragma once

#include "wc_config.h"

namespace wc {

struct ModelCoefficients {
  template <typename P>
  WC_HD auto ca(const P& p, int64_t m) const { return p.ca[m]; }
  template <typename P>
  WC_HD auto cb(const P& p, int64_t m) const { return p.cb[m]; }
  template <typename P>
  WC_HD auto cq(const P& p, int64_t m) const { return p.cq[m]; }
};

template <typename T>
struct UniformCoefficients {
  const T* a;  // ca, cb and cq at the run's first cell
  const T* b;
  const T* q;
  template <typename P>
  WC_HD T ca(const P&, int64_t) const { return *a; }
  template <typename P>
  WC_HD T cb(const P&, int64_t) const { return *b; }
  template <typename P>
  WC_HD T cq(const P&, int64_t) const { return *q; }
};

}  // namespace wc
