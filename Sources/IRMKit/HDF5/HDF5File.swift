import CHDF5
import Foundation

/// An open HDF5 file. Closing happens when the last reference (including groups and datasets opened
/// from it) goes away.
///
/// libhdf5 on Debian is built thread-safe behind one global lock: read what you need up front, and
/// never call it from a hot loop.
public final class HDF5File {
    public let path: String
    let id: hid_t

    public enum Mode: Sendable { case readOnly, readWrite }

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { _ = H5Fclose(id) }

    /// Opens an existing file. Fails with a message that says whether the file is missing, is not an
    /// HDF5 file at all, or is damaged.
    public static func open(_ path: String, mode: Mode = .readOnly) throws -> HDF5File {
        HDF5Library.ensureReady()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HDF5Error(file: path, object: nil, message: "file not found")
        }
        guard !isDirectory.boolValue else {
            throw HDF5Error(file: path, object: nil, message: "expected an HDF5 file, found a directory")
        }
        let kind = InputFile.kind(of: path)
        guard kind == .regular else {
            throw HDF5Error(file: path, object: nil, message: "is \(kind.phrase), expected a regular file (an HDF5 file)")
        }
        let signature = H5Fis_hdf5(path)
        if signature == 0 {
            throw HDF5Error(file: path, object: nil,
                            message: "not an HDF5 file (no HDF5 signature found; expected a .h5 file written by irm or h5py)")
        }
        if signature < 0 {
            throw HDF5Error(file: path, object: nil, message: "cannot read the file",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        let flags = mode == .readOnly ? irm_H5F_ACC_RDONLY() : irm_H5F_ACC_RDWR()
        let id = H5Fopen(path, flags, irm_H5P_DEFAULT())
        guard id >= 0 else {
            throw HDF5Error(file: path, object: nil,
                            message: "cannot open the HDF5 file; it may be truncated or corrupt",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        return HDF5File(path: path, id: id)
    }

    /// Creates a file, replacing any file at `path` when `overwrite` is true. Objects are created
    /// without modification times, so that the same content gives byte-identical files.
    public static func create(_ path: String, overwrite: Bool = true) throws -> HDF5File {
        HDF5Library.ensureReady()
        let fcpl = H5Pcreate(irm_H5P_FILE_CREATE())
        defer { if fcpl >= 0 { _ = H5Pclose(fcpl) } }
        if fcpl >= 0 { _ = H5Pset_obj_track_times(fcpl, false) }
        // Values of 1 KiB and more start on a 64-byte boundary, so that a reader can map a tensor
        // and use it in place (float32 needs 4; 64 keeps SIMD loads within cache lines).
        let fapl = H5Pcreate(irm_H5P_FILE_ACCESS())
        defer { if fapl >= 0 { _ = H5Pclose(fapl) } }
        if fapl >= 0 { _ = H5Pset_alignment(fapl, 1024, 64) }
        let flags = overwrite ? irm_H5F_ACC_TRUNC() : irm_H5F_ACC_EXCL()
        let id = H5Fcreate(path, flags, fcpl >= 0 ? fcpl : irm_H5P_DEFAULT(), fapl >= 0 ? fapl : irm_H5P_DEFAULT())
        guard id >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot create the file (check that the directory exists and is writable)",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        return HDF5File(path: path, id: id)
    }

    /// The root group, `/`.
    public func root() throws -> HDF5Group {
        try HDF5Group.open(in: self, parentID: id, name: "/", path: "/")
    }

    /// Bytes before the HDF5 superblock (a user block), which offsets inside the file skip.
    public var userBlockSize: Int {
        let fcpl = H5Fget_create_plist(id)
        guard fcpl >= 0 else { return 0 }
        defer { _ = H5Pclose(fcpl) }
        var size: hsize_t = 0
        return H5Pget_userblock(fcpl, &size) >= 0 ? Int(size) : 0
    }

    /// Flushes buffered data to disk.
    public func flush() throws {
        guard H5Fflush(id, H5F_SCOPE_LOCAL) >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot flush the file to disk",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
    }
}

/// What a link inside a group points at.
public enum HDF5ObjectKind: Sendable, Equatable {
    case group, dataset, other
}

/// Shared attribute access for groups and datasets.
public protocol HDF5AttributeHolder {
    var file: HDF5File { get }
    var objectID: hid_t { get }
    /// The object's absolute path inside the file, for messages.
    var path: String { get }
}

extension HDF5AttributeHolder {
    func error(_ message: String, object: String? = nil) -> HDF5Error {
        HDF5Error(file: file.path, object: object ?? path, message: message,
                  libraryDetail: HDF5Library.takeErrorDetail())
    }

    /// Names of the object's attributes, in creation order where tracked, else by name.
    public func attributeNames() throws -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(objectID, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else {
            throw error("cannot list attributes")
        }
        var names: [String] = []
        for index in 0..<Int(info.num_attrs) {
            let length = H5Aget_name_by_idx(objectID, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), nil, 0, irm_H5P_DEFAULT())
            guard length >= 0 else { throw error("cannot read the name of attribute \(index)") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Aget_name_by_idx(objectID, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), &buffer, buffer.count, irm_H5P_DEFAULT())
            names.append(String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    public func hasAttribute(_ name: String) -> Bool {
        H5Aexists(objectID, name) > 0
    }

    /// Reads an attribute, or returns nil when it does not exist. Integer attributes read as `int`,
    /// floating-point ones as `double`, strings (fixed or variable length) as `string`; arrays of
    /// more than one element come back as the plural cases.
    public func attribute(_ name: String) throws -> HDF5AttributeValue? {
        guard hasAttribute(name) else { return nil }
        let attr = H5Aopen(objectID, name, irm_H5P_DEFAULT())
        guard attr >= 0 else { throw error("cannot open attribute '\(name)'") }
        defer { _ = H5Aclose(attr) }
        let type = H5Aget_type(attr)
        guard type >= 0 else { throw error("cannot read the type of attribute '\(name)'") }
        defer { _ = H5Tclose(type) }
        let space = H5Aget_space(attr)
        guard space >= 0 else { throw error("cannot read the shape of attribute '\(name)'") }
        defer { _ = H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        let isScalar = H5Sget_simple_extent_ndims(space) == 0
        let what = "attribute '\(name)'"

        switch H5Tget_class(type) {
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: count)
            guard H5Aread(attr, irm_H5T_NATIVE_INT64(), &values) >= 0 else { throw error("cannot read \(what)") }
            return isScalar || count == 1 ? .int(values.first ?? 0) : .ints(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            guard H5Aread(attr, irm_H5T_NATIVE_DOUBLE(), &values) >= 0 else { throw error("cannot read \(what)") }
            return isScalar || count == 1 ? .double(values.first ?? 0) : .doubles(values)
        case H5T_STRING:
            let strings = try HDF5Strings.read(count: count, fileType: type, what: what, holder: self) { memType, buffer in
                H5Aread(attr, memType, buffer)
            }
            return isScalar || strings.count == 1 ? .string(strings.first ?? "") : .strings(strings)
        default:
            throw error("\(what) has a type irm does not read (expected a string, an integer or a float)")
        }
    }

    /// Creates or replaces an attribute.
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue) throws {
        if hasAttribute(name) {
            guard H5Adelete(objectID, name) >= 0 else { throw error("cannot replace attribute '\(name)'") }
        }
        func withSpace<R>(count: Int?, _ body: (hid_t) throws -> R) throws -> R {
            let space: hid_t
            if let count {
                var dims = [hsize_t(count)]
                space = H5Screate_simple(1, &dims, nil)
            } else {
                space = H5Screate(H5S_SCALAR)
            }
            guard space >= 0 else { throw error("cannot create the dataspace for attribute '\(name)'") }
            defer { _ = H5Sclose(space) }
            return try body(space)
        }
        func write(type fileType: hid_t, memType: hid_t, count: Int?, _ data: UnsafeRawPointer) throws {
            try withSpace(count: count) { space in
                let attr = H5Acreate2(objectID, name, fileType, space, irm_H5P_DEFAULT(), irm_H5P_DEFAULT())
                guard attr >= 0 else { throw error("cannot create attribute '\(name)'") }
                defer { _ = H5Aclose(attr) }
                guard H5Awrite(attr, memType, data) >= 0 else { throw error("cannot write attribute '\(name)'") }
            }
        }
        switch value {
        case .int(let v):
            try withUnsafePointer(to: v) { try write(type: irm_H5T_STD_I64LE(), memType: irm_H5T_NATIVE_INT64(), count: nil, $0) }
        case .double(let v):
            try withUnsafePointer(to: v) { try write(type: irm_H5T_IEEE_F64LE(), memType: irm_H5T_NATIVE_DOUBLE(), count: nil, $0) }
        case .ints(let v):
            try v.withUnsafeBytes { try write(type: irm_H5T_STD_I64LE(), memType: irm_H5T_NATIVE_INT64(), count: v.count, $0.baseAddress!) }
        case .doubles(let v):
            try v.withUnsafeBytes { try write(type: irm_H5T_IEEE_F64LE(), memType: irm_H5T_NATIVE_DOUBLE(), count: v.count, $0.baseAddress!) }
        case .string(let s):
            try HDF5Strings.withVariableLengthBuffer([s]) { type, buffer in
                try write(type: type, memType: type, count: nil, buffer)
            }
        case .strings(let v):
            try HDF5Strings.withVariableLengthBuffer(v) { type, buffer in
                try write(type: type, memType: type, count: v.count, buffer)
            }
        }
    }
}

/// Variable- and fixed-length UTF-8 string I/O shared by datasets and attributes.
enum HDF5Strings {
    /// Builds a variable-length UTF-8 string type and an array of C string pointers for `strings`,
    /// valid for the duration of `body`.
    static func withVariableLengthBuffer<R>(_ strings: [String], _ body: (hid_t, UnsafeRawPointer) throws -> R) throws -> R {
        let type = H5Tcopy(irm_H5T_C_S1())
        defer { _ = H5Tclose(type) }
        _ = H5Tset_size(type, irm_H5T_VARIABLE())
        _ = H5Tset_cset(type, H5T_CSET_UTF8)
        let cStrings = strings.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        return try cStrings.withUnsafeBufferPointer { try body(type, UnsafeRawPointer($0.baseAddress!)) }
    }

    /// Reads `count` strings with `read(memType, buffer)`, whether the stored type is variable- or
    /// fixed-length. Fixed-length values are cut at their first NUL.
    static func read(
        count: Int, fileType: hid_t, what: String, holder: some HDF5AttributeHolder,
        _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t
    ) throws -> [String] {
        let memType = H5Tcopy(irm_H5T_C_S1())
        defer { _ = H5Tclose(memType) }
        _ = H5Tset_cset(memType, H5T_CSET_UTF8)
        if H5Tis_variable_str(fileType) > 0 {
            _ = H5Tset_size(memType, irm_H5T_VARIABLE())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
            guard status >= 0 else { throw holder.error("cannot read \(what)") }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            // Reclaim the library-allocated strings (H5Treclaim only exists from HDF5 1.12).
            var dims = [hsize_t(count)]
            let space = H5Screate_simple(1, &dims, nil)
            defer { _ = H5Sclose(space) }
            _ = pointers.withUnsafeMutableBytes { H5Dvlen_reclaim(memType, space, irm_H5P_DEFAULT(), $0.baseAddress!) }
            return strings
        }
        let width = H5Tget_size(fileType)
        guard width > 0 else { throw holder.error("\(what) has a zero-width string type") }
        _ = H5Tset_size(memType, width)
        var bytes = [UInt8](repeating: 0, count: width * count)
        let status = bytes.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
        guard status >= 0 else { throw holder.error("cannot read \(what)") }
        return (0..<count).map { index in
            let slice = bytes[(index * width)..<((index + 1) * width)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        }
    }
}
