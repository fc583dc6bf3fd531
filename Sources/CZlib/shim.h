#ifndef IRM_CZLIB_SHIM_H
#define IRM_CZLIB_SHIM_H
/* zlib, which libhdf5 links already, for crc32(): the checksum irm stores with every tensor it writes. */
#include <zlib.h>
#endif
