import CHDF5
import Foundation

/// An open dataset. Reads are whole-array and typed; a mismatch in element type or shape is an
/// error that names the dataset, what was expected and what was found.
public final class HDF5Dataset: HDF5AttributeHolder {
    public let file: HDF5File
    public let path: String
    let id: hid_t
    public var objectID: hid_t { id }
    /// Shape and element type, read once at open.
    public let info: HDF5DatasetInfo

    private init(file: HDF5File, id: hid_t, path: String, info: HDF5DatasetInfo) {
        self.file = file
        self.id = id
        self.path = path
        self.info = info
    }

    deinit { _ = H5Dclose(id) }

    static func open(in group: HDF5Group, name: String) throws -> HDF5Dataset {
        let path = group.childPath(name)
        let id = H5Dopen2(group.id, name, irm_H5P_DEFAULT())
        guard id >= 0 else {
            throw HDF5Error(file: group.file.path, object: path, message: "cannot open the dataset",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        do {
            let info = try readInfo(id: id, file: group.file, path: path)
            return HDF5Dataset(file: group.file, id: id, path: path, info: info)
        } catch {
            _ = H5Dclose(id)
            throw error
        }
    }

    private static func readInfo(id: hid_t, file: HDF5File, path: String) throws -> HDF5DatasetInfo {
        let space = H5Dget_space(id)
        guard space >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's shape", libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's rank", libraryDetail: HDF5Library.takeErrorDetail())
        }
        var dims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 { _ = H5Sget_simple_extent_dims(space, &dims, nil) }
        let type = H5Dget_type(id)
        guard type >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's type", libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Tclose(type) }
        var elementType = classify(type: type)
        if elementType == .uint16 {
            let marker = try? OpeningDataset(file: file, objectID: id, path: path).attribute(HDF5BFloat16Marker.attributeName)
            if marker?.stringValue == HDF5BFloat16Marker.attributeValue { elementType = .bfloat16 }
        }
        // libhdf5 does not bound a dataspace read from a file: a corrupt one can declare more
        // elements, or bytes, than an Int holds, and every size computed from the shape would trap.
        // Zero extents count as 1, so that no product of some of the extents overflows either.
        let width = max(1, H5Tget_size(type))
        var bytes = width
        var shape: [Int] = []
        for dim in dims {
            let extent = Int(exactly: dim)
            let (product, overflow) = bytes.multipliedReportingOverflow(by: max(1, extent ?? 0))
            guard let extent, !overflow else {
                throw HDF5Error(file: file.path, object: path,
                                message: "declares shape \(dims) of \(width)-byte values, more bytes than any file can hold; the file is corrupt")
            }
            shape.append(extent)
            bytes = product
        }
        return HDF5DatasetInfo(shape: shape, elementType: elementType)
    }

    /// The dataset while `open` reads its info, so that its attributes are read the one way.
    private struct OpeningDataset: HDF5AttributeHolder {
        let file: HDF5File
        let objectID: hid_t
        let path: String
    }

    /// Maps an HDF5 type onto the element types irm handles.
    static func classify(type: hid_t) -> HDF5ElementType {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            switch size {
            case 2: return .float16
            case 4: return .float32
            case 8: return .float64
            default: return .unsupported("float\(size * 8)")
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (4, true): return .int32
            case (8, true): return .int64
            case (2, false): return .uint16
            default: return .unsupported("\(signed ? "int" : "uint")\(size * 8)")
            }
        case H5T_STRING: return .string
        case H5T_COMPOUND: return .unsupported("compound")
        case H5T_ENUM: return .unsupported("enum (h5py writes bool this way)")
        default: return .unsupported("HDF5 type class \(H5Tget_class(type).rawValue)")
        }
    }

    private func check(shape expected: [Int]?) throws {
        if let expected, expected != info.shape {
            throw HDF5Error(file: file.path, object: path, message: "expected shape \(expected), found \(info.shape)")
        }
    }

    /// Reads the whole dataset as `T`. The stored element type must be exactly `T`'s; use
    /// `readFloat32` for converting reads of floating-point tensors.
    public func read<T: HDF5Numeric>(as type: T.Type, expectedShape: [Int]? = nil) throws -> HDF5Array<T> {
        guard info.elementType == T.hdf5ElementType else {
            throw HDF5Error(file: file.path, object: path, message: "expected \(T.hdf5ElementType) values, found \(info.elementType)")
        }
        try check(shape: expectedShape)
        let count = info.elementCount
        let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialised in
            if count > 0 {
                try readRaw(into: UnsafeMutableRawBufferPointer(buffer), memoryType: T.hdf5TypeID)
            }
            initialised = count
        }
        return HDF5Array(shape: info.shape, values: values)
    }

    /// Half floats are read with the file's own type in little-endian order (a byte copy, or a byte
    /// swap for a big-endian file), because libhdf5's soft conversion between float layouts is very
    /// slow. Chunked datasets are decoded by irm
    /// (`readChunks`) and then converted from the file's type (byte order) by libhdf5.
    private func readRaw(into buffer: UnsafeMutableRawBufferPointer, memoryType: hid_t) throws {
        var memType = memoryType
        var ownedType: hid_t = -1
        if info.elementType == .float16 {
            let fileType = H5Dget_type(id)
            ownedType = fileType >= 0 ? H5Tcopy(fileType) : -1
            if fileType >= 0 { _ = H5Tclose(fileType) }
            guard ownedType >= 0, H5Tset_order(ownedType, H5T_ORDER_LE) >= 0 else {
                throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's type", libraryDetail: HDF5Library.takeErrorDetail())
            }
            memType = ownedType
        }
        defer { if ownedType >= 0 { _ = H5Tclose(ownedType) } }
        if case .chunked = try storage() {
            let fileType = H5Dget_type(id)
            guard fileType >= 0 else { throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's type", libraryDetail: HDF5Library.takeErrorDetail()) }
            defer { _ = H5Tclose(fileType) }
            let width = H5Tget_size(fileType)
            guard width == H5Tget_size(memType), buffer.count == info.elementCount * width else {
                throw HDF5Error(file: file.path, object: path, message: "cannot read \(info.elementType) values of \(width) bytes into \(H5Tget_size(memType))-byte ones")
            }
            try readChunks(into: buffer, width: width)
            if H5Tequal(fileType, memType) <= 0,
               H5Tconvert(fileType, memType, info.elementCount, buffer.baseAddress, nil, irm_H5P_DEFAULT()) < 0 {
                throw HDF5Error(file: file.path, object: path, message: "cannot convert the dataset's values", libraryDetail: HDF5Library.takeErrorDetail())
            }
            return
        }
        guard H5Dread(id, memType, irm_H5S_ALL(), irm_H5S_ALL(), irm_H5P_DEFAULT(), buffer.baseAddress) >= 0 else {
            throw HDF5Error(file: file.path, object: path,
                            message: "cannot read the dataset's values; the file may be truncated or corrupt",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
    }

    /// Reads a floating-point dataset (float16, bfloat16, float32 or float64) as float32.
    /// float64 values are rounded to nearest; the narrower types widen exactly. `storedBytes`, when
    /// given, is shown the values at their stored type as little-endian bytes before they are
    /// widened (the bytes a checksum covers), and may throw to stop the read.
    public func readFloat32(expectedShape: [Int]? = nil, storedBytes: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws -> HDF5Array<Float> {
        try check(shape: expectedShape)
        let count = info.elementCount
        switch info.elementType {
        case .float32:
            let array = try read(as: Float.self)
            try array.values.withUnsafeBytes { try storedBytes?($0) }
            return array
        case .float64:
            let wide = try read(as: Double.self).values
            try wide.withUnsafeBytes { try storedBytes?($0) }
            return HDF5Array(shape: info.shape, values: wide.map { Float($0) })
        case .float16:
            let half = try read(as: Float16.self).values
            try half.withUnsafeBytes { try storedBytes?($0) }
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                half.withUnsafeBufferPointer { source in
                    for index in 0..<count { buffer[index] = Float(source[index]) }
                }
                initialised = count
            }
            return HDF5Array(shape: info.shape, values: values)
        case .bfloat16:
            let bits = try readBits()
            try bits.withUnsafeBytes { try storedBytes?($0) }
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                bits.withUnsafeBufferPointer { source in
                    for index in 0..<count { buffer[index] = Float(bitPattern: UInt32(source[index]) << 16) }
                }
                initialised = count
            }
            return HDF5Array(shape: info.shape, values: values)
        default:
            throw HDF5Error(file: file.path, object: path,
                            message: "expected floating-point values (float16, bfloat16, float32 or float64), found \(info.elementType)")
        }
    }

    /// Reads a 2-byte dataset's raw bit patterns (uint16, or bfloat16 stored as uint16).
    public func readBits() throws -> [UInt16] {
        guard info.elementType == .uint16 || info.elementType == .bfloat16 else {
            throw HDF5Error(file: file.path, object: path, message: "expected uint16 or bfloat16 values, found \(info.elementType)")
        }
        let count = info.elementCount
        return try [UInt16](unsafeUninitializedCapacity: count) { buffer, initialised in
            if count > 0 { try readRaw(into: UnsafeMutableRawBufferPointer(buffer), memoryType: irm_H5T_NATIVE_UINT16()) }
            initialised = count
        }
    }

    /// Reads the stored elements as little-endian bytes, whatever their type (not strings).
    public func readRawBytes() throws -> [UInt8] {
        guard let width = info.elementType.byteWidth else {
            throw HDF5Error(file: file.path, object: path, message: "expected a numeric dataset, found \(info.elementType)")
        }
        let byteCount = info.elementCount * width
        let memType: hid_t
        switch info.elementType {
        case .float32: memType = irm_H5T_NATIVE_FLOAT()
        case .float64: memType = irm_H5T_NATIVE_DOUBLE()
        case .int32: memType = irm_H5T_NATIVE_INT32()
        case .int64: memType = irm_H5T_NATIVE_INT64()
        default: memType = irm_H5T_NATIVE_UINT16()  // float16 is redirected to the file type in readRaw
        }
        return try [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialised in
            if byteCount > 0 { try readRaw(into: UnsafeMutableRawBufferPointer(buffer), memoryType: memType) }
            initialised = byteCount
        }
    }

    /// Reads a scalar (or one-element) string dataset, fixed- or variable-length.
    public func readString() throws -> String {
        guard info.elementType == .string else {
            throw HDF5Error(file: file.path, object: path, message: "expected a string, found \(info.elementType) values")
        }
        guard info.elementCount == 1 else {
            throw HDF5Error(file: file.path, object: path, message: "expected one string, found an array of shape \(info.shape)")
        }
        if case .chunked = try storage() {
            // Chunks are decoded by irm only for numbers; a string is small enough to store whole.
            throw HDF5Error(file: file.path, object: path, message: "is a chunked string dataset; irm reads strings stored contiguously or compactly (h5py's default)")
        }
        let type = H5Dget_type(id)
        defer { _ = H5Tclose(type) }
        let strings = try HDF5Strings.read(count: 1, fileType: type, what: "the string", holder: self) { memType, buffer in
            H5Dread(id, memType, irm_H5S_ALL(), irm_H5S_ALL(), irm_H5P_DEFAULT(), buffer)
        }
        return strings[0]
    }
}
