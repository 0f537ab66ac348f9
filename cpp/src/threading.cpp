#include "vecdex/threading.h"

#if defined(VECDEX_HAVE_OPENMP)
#include <omp.h>
#endif

namespace vecdex {

int resolve_num_threads(int requested) {
  if (requested > 0) return requested;
#if defined(VECDEX_HAVE_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace vecdex
