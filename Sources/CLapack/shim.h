#ifndef IRM_CLAPACK_SHIM_H
#define IRM_CLAPACK_SHIM_H
#include <lapacke.h>

/* lapack_int is a macro (int, or int64_t under ILP64); Swift sees Int32 for Debian's build.
   This constant lets Swift code check the width it links against. */
static inline int irm_lapack_int_size(void) { return (int)sizeof(lapack_int); }
static inline int irm_LAPACK_COL_MAJOR(void) { return LAPACK_COL_MAJOR; }
#endif
