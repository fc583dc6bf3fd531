#ifndef IRM_CHDF5_SHIM_H
#define IRM_CHDF5_SHIM_H
#include <hdf5.h>

/* HDF5's predefined type ids and several flags are macros that expand to H5open() calls or casts,
   which Swift cannot import. These getters expose them. */
static inline hid_t irm_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t irm_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t irm_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t irm_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t irm_H5T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t irm_H5T_NATIVE_UINT32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t irm_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t irm_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t irm_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t irm_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t irm_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t irm_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t irm_H5T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t irm_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t irm_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline unsigned irm_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned irm_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned irm_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned irm_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline hid_t irm_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t irm_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t irm_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t irm_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t irm_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t irm_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t irm_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t irm_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline haddr_t irm_HADDR_UNDEF(void) { return HADDR_UNDEF; }

/* 1 when `name` in `loc` is a hard link, 0 for a soft or external link, -1 when it cannot be read.
   H5Lget_info and H5L_info_t name the right version on libhdf5 1.10 and later alike. */
static inline int irm_link_is_hard(hid_t loc, const char *name) {
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD ? 1 : 0;
}

/* 1 and the object's address when `name` in `loc` is a hard link, 0 for a soft or external link,
   -1 when the link cannot be read. Reads the link only, never the object's header. */
static inline int irm_hard_link_address(hid_t loc, const char *name, haddr_t *address) {
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, H5P_DEFAULT) < 0) return -1;
    if (info.type != H5L_TYPE_HARD) return 0;
    *address = info.u.address;
    return 1;
}

#endif
