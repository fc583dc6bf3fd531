import CHDF5
import Foundation

/// How libhdf5 keeps a dataset's values in the file.
public enum HDF5Storage: Equatable, Sendable, CustomStringConvertible {
    /// One run of bytes at `offset` (from the start of the file), unfiltered: irm can map it.
    case contiguous(offset: Int, byteCount: Int)
    /// Contiguous, but not in a form irm maps (big-endian, not yet written, unaligned...).
    case contiguousUnmappable(String)
    /// Chunks, possibly compressed by the named filters.
    case chunked(filters: [String])
    /// Inside the object header (small datasets).
    case compact
    /// Values kept in other files (`H5Pset_external`): irm refuses these.
    case external(files: [String])
    /// A virtual dataset assembled from other datasets or files: irm refuses these.
    case virtual

    public var description: String {
        switch self {
        case .contiguous: "contiguous"
        case .contiguousUnmappable(let why): "contiguous (\(why))"
        case .chunked(let filters): filters.isEmpty ? "chunked" : "chunked, \(filters.joined(separator: " + "))"
        case .compact: "compact"
        case .external(let files): "external storage in \(files.joined(separator: ", "))"
        case .virtual: "a virtual dataset"
        }
    }

    /// Whether irm can map the values in place.
    public var isMappable: Bool {
        if case .contiguous = self { return true }
        return false
    }
}

extension HDF5Dataset {
    /// Where and how the values are stored. Errors are for a file that libhdf5 cannot describe, for
    /// a damaged chunk shape, or for a filter irm does not decode.
    public func storage() throws -> HDF5Storage {
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's storage properties", libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Pclose(dcpl) }
        let externalCount = H5Pget_external_count(dcpl)
        if externalCount > 0 {
            var files: [String] = []
            for index in 0..<UInt32(externalCount) {
                var name = [CChar](repeating: 0, count: 1024)
                var offset: off_t = 0
                var size: hsize_t = 0
                if H5Pget_external(dcpl, index, name.count, &name, &offset, &size) >= 0 {
                    files.append(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
            }
            return .external(files: files)
        }
        switch H5Pget_layout(dcpl) {
        case H5D_VIRTUAL: return .virtual
        case H5D_COMPACT: return .compact
        case H5D_CHUNKED:
            // Only filters irm decodes itself (HDF5ChunkedRead.swift): a plugin's would need a
            // shared library, which irm never loads (`HDF5Library`).
            return .chunked(filters: try chunkLayout().filters.map(\.name))
        case H5D_CONTIGUOUS:
            break
        default:
            throw HDF5Error(file: file.path, object: path, message: "unknown storage layout", libraryDetail: HDF5Library.takeErrorDetail())
        }
        guard let width = info.elementType.byteWidth else { return .contiguousUnmappable("not numeric") }
        let offset = H5Dget_offset(id)
        guard offset != irm_HADDR_UNDEF() else { return .contiguousUnmappable("no values written") }
        let type = H5Dget_type(id)
        defer { _ = H5Tclose(type) }
        guard H5Tget_order(type) == H5T_ORDER_LE else { return .contiguousUnmappable("big-endian") }
        if info.elementType == .float16 {
            var sign = 0, exponentPosition = 0, exponentSize = 0, mantissaPosition = 0, mantissaSize = 0
            _ = H5Tget_fields(type, &sign, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize)
            guard sign == 15, exponentPosition == 10, exponentSize == 5, mantissaPosition == 0, mantissaSize == 10, H5Tget_ebias(type) == 15 else {
                return .contiguousUnmappable("not IEEE half precision")
            }
        }
        let byteCount = info.elementCount * width
        guard H5Dget_storage_size(id) == hsize_t(byteCount) else { return .contiguousUnmappable("its stored size differs from its shape") }
        guard offset <= UInt64(Int.max) else { return .contiguousUnmappable("offset out of range") }
        return .contiguous(offset: Int(offset), byteCount: byteCount)
    }

    /// The first and last `count` elements (fewer when the dataset is smaller), as the file stores
    /// them (little-endian bytes), read through libhdf5. Used to confirm that a mapped offset holds
    /// what libhdf5 reads there.
    func readEdgeBytes(count requested: Int) throws -> (first: [UInt8], last: [UInt8]) {
        guard let width = info.elementType.byteWidth, !info.shape.isEmpty, let lastDimension = info.shape.last, lastDimension > 0,
              info.elementCount > 0 else { return ([], []) }
        let count = min(requested, lastDimension)
        let rank = info.shape.count
        let memoryType: hid_t
        var ownedType: hid_t = -1
        switch info.elementType {
        case .float32: memoryType = irm_H5T_NATIVE_FLOAT()
        case .float16:
            ownedType = H5Dget_type(id)
            memoryType = ownedType
        default: memoryType = irm_H5T_NATIVE_UINT16()
        }
        defer { if ownedType >= 0 { _ = H5Tclose(ownedType) } }
        func read(start: [hsize_t]) throws -> [UInt8] {
            let fileSpace = H5Dget_space(id)
            defer { _ = H5Sclose(fileSpace) }
            var counts = [hsize_t](repeating: 1, count: rank)
            counts[rank - 1] = hsize_t(count)
            var memoryCount = [hsize_t(count)]
            let memorySpace = H5Screate_simple(1, &memoryCount, nil)
            defer { _ = H5Sclose(memorySpace) }
            var begin = start
            guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &begin, nil, &counts, nil) >= 0 else {
                throw HDF5Error(file: file.path, object: path, message: "cannot select part of the dataset", libraryDetail: HDF5Library.takeErrorDetail())
            }
            var bytes = [UInt8](repeating: 0, count: count * width)
            guard H5Dread(id, memoryType, memorySpace, fileSpace, irm_H5P_DEFAULT(), &bytes) >= 0 else {
                throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's values; the file may be truncated or corrupt",
                                libraryDetail: HDF5Library.takeErrorDetail())
            }
            return bytes
        }
        let first = try read(start: [hsize_t](repeating: 0, count: rank))
        var lastStart = info.shape.map { hsize_t($0 - 1) }
        lastStart[rank - 1] = hsize_t(lastDimension - count)
        return (first, try read(start: lastStart))
    }
}

extension HDF5Group {
    /// Throws unless `name` is a hard link: a soft link can point anywhere in the file, and an
    /// external link into another file, which irm must never read on a checkpoint's say-so.
    func requireHardLink(_ name: String) throws {
        switch irm_link_is_hard(id, name) {
        case 1: return
        case 0:
            throw HDF5Error(file: file.path, object: childPath(name),
                            message: "is a soft or external link; irm reads only objects stored in the file itself")
        default:
            throw HDF5Error(file: file.path, object: childPath(name), message: "cannot read the link", libraryDetail: HDF5Library.takeErrorDetail())
        }
    }
}
