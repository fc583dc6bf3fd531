#ifndef IRM_CBLAS_SHIM_H
#define IRM_CBLAS_SHIM_H
#include <cblas.h>
#endif
