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
    /// The objects whose attribute messages irm has checked (`HDF5ObjectHeader`), in a file opened
    /// read-only; nil for a file irm is writing, whose headers are its own and not yet on disk.
    let attributeChecks: HDF5AttributeCheckCache?

    public enum Mode: Sendable { case readOnly, readWrite }

    private init(path: String, id: hid_t, writable: Bool) {
        self.path = path
        self.id = id
        self.attributeChecks = writable ? nil : HDF5AttributeCheckCache()
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
        return HDF5File(path: path, id: id, writable: mode == .readWrite)
    }

    /// Creates a file, replacing any file at `path` when `overwrite` is true. Objects are created
    /// without modification times, so that the same content gives byte-identical files.
    ///
    /// The file uses the HDF5 1.8 format (`libver` v18 to v18): a version 2 superblock and version 2
    /// object headers, both with checksums that libhdf5 verifies whenever it reads them, so damaged
    /// metadata is reported as an error rather than followed. Groups keep their links in their
    /// header (`compactLinkLimit`). Every libhdf5 since 1.8, and h5py, reads such files.
    public static func create(_ path: String, overwrite: Bool = true) throws -> HDF5File {
        HDF5Library.ensureReady()
        let fcpl = H5Pcreate(irm_H5P_FILE_CREATE())
        defer { if fcpl >= 0 { _ = H5Pclose(fcpl) } }
        let fapl = H5Pcreate(irm_H5P_FILE_ACCESS())
        defer { if fapl >= 0 { _ = H5Pclose(fapl) } }
        // Values of 1 KiB and more start on a 64-byte boundary, so that a reader can map a tensor
        // and use it in place (float32 needs 4; 64 keeps SIMD loads within cache lines).
        guard fcpl >= 0, fapl >= 0, H5Pset_obj_track_times(fcpl, false) >= 0,
              H5Pset_link_phase_change(fcpl, compactLinkLimit, compactLinkLimit) >= 0,
              H5Pset_alignment(fapl, 1024, 64) >= 0, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot set up the file's creation properties",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        let flags = overwrite ? irm_H5F_ACC_TRUNC() : irm_H5F_ACC_EXCL()
        let id = H5Fcreate(path, flags, fcpl, fapl)
        guard id >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot create the file (check that the directory exists and is writable)",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        return HDF5File(path: path, id: id, writable: true)
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

    /// Groups keep up to this many links as messages in their own (checksummed) object header. The
    /// 1.8 format's default moves a group of more than 8 links into a fractal heap, whose blocks
    /// libhdf5 does not checksum.
    static let compactLinkLimit: UInt32 = 65535

    /// The superblock's format version: 0 or 1 for files in the original HDF5 format (h5py's
    /// default), 2 or 3 for the 1.8 and 1.10 formats, whose superblock and object headers carry
    /// checksums.
    public var superblockVersion: Int? {
        var info = H5F_info2_t()
        guard H5Fget_info2(id, &info) >= 0 else {
            _ = HDF5Library.takeErrorDetail()
            return nil
        }
        return Int(info.super.version)
    }

    /// The file's size on disk in bytes (`Int.max` when it cannot be read), the bound for any size
    /// that its metadata declares.
    public var sizeOnDisk: Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : Int.max
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
        try checkAttributeMessages()
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

    /// Whether the attribute exists; false, too, for an object whose attribute messages fail irm's
    /// checks (`attribute(_:)` says why).
    public func hasAttribute(_ name: String) -> Bool {
        guard (try? checkAttributeMessages()) != nil else { return false }
        return H5Aexists(objectID, name) > 0
    }

    /// The version of the object's header: 1 in the original HDF5 format, 2 (with a checksum that
    /// libhdf5 verifies on every read) in the 1.8 format that irm writes.
    public var objectHeaderVersion: Int? {
        var info = H5O_info_t()
        guard H5Oget_info2(objectID, &info, UInt32(H5O_INFO_HDR)) >= 0 else {
            _ = HDF5Library.takeErrorDetail()
            return nil
        }
        return Int(info.hdr.version)
    }

    /// Reads an attribute, or returns nil when it does not exist. Integer attributes read as `int`,
    /// floating-point ones as `double`, strings (fixed or variable length) as `string`; arrays of
    /// more than one element come back as the plural cases.
    ///
    /// The object's attribute messages are checked by irm before libhdf5 decodes any of them
    /// (`HDF5ObjectHeader`), and the attribute's declared size against the file's before anything
    /// is allocated or read for it. Variable-length strings (h5py's default for `str`) are read
    /// from the global heap by irm (`HDF5VariableLengthStrings`), never by libhdf5.
    public func attribute(_ name: String) throws -> HDF5AttributeValue? {
        try checkAttributeMessages()
        let exists = H5Aexists(objectID, name)
        guard exists >= 0 else { throw error("cannot look up attribute '\(name)'; the file may be corrupt") }
        guard exists > 0 else { return nil }
        let attr = H5Aopen(objectID, name, irm_H5P_DEFAULT())
        guard attr >= 0 else { throw error("cannot open attribute '\(name)'") }
        defer { _ = H5Aclose(attr) }
        let type = H5Aget_type(attr)
        guard type >= 0 else { throw error("cannot read the type of attribute '\(name)'") }
        defer { _ = H5Tclose(type) }
        let space = H5Aget_space(attr)
        guard space >= 0 else { throw error("cannot read the shape of attribute '\(name)'") }
        defer { _ = H5Sclose(space) }
        let what = "attribute '\(name)'"
        let points = H5Sget_simple_extent_npoints(space)
        guard points >= 0 else { throw error("cannot read the shape of \(what)") }
        let count = Int(points)
        let isScalar = H5Sget_simple_extent_ndims(space) == 0
        let fileSize = file.sizeOnDisk
        let storedBytes = H5Aget_storage_size(attr)
        guard count <= fileSize, storedBytes <= UInt64(fileSize) else {
            throw HDF5Error(file: file.path, object: path,
                            message: "\(what) declares \(count) elements in \(storedBytes) bytes, more than the \(fileSize)-byte file holds; the file is corrupt")
        }

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

    /// Creates or replaces an unsigned 32-bit integer attribute (`H5T_STD_U32LE`, numpy `uint32`),
    /// such as a CRC-32. It reads back through `attribute(_:)` as `.int`.
    public func setAttribute(_ name: String, uint32 value: UInt32) throws {
        try replaceAttribute(name, type: irm_H5T_STD_U32LE(), memType: irm_H5T_NATIVE_UINT32(), count: nil) { write in
            try withUnsafePointer(to: value) { try write($0) }
        }
    }

    /// Creates or replaces an attribute. Strings are stored fixed-length (`HDF5Strings`).
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue) throws {
        let int64 = (irm_H5T_STD_I64LE(), irm_H5T_NATIVE_INT64())
        let float64 = (irm_H5T_IEEE_F64LE(), irm_H5T_NATIVE_DOUBLE())
        switch value {
        case .int(let v):
            try replaceAttribute(name, type: int64.0, memType: int64.1, count: nil) { write in try withUnsafePointer(to: v) { try write($0) } }
        case .double(let v):
            try replaceAttribute(name, type: float64.0, memType: float64.1, count: nil) { write in try withUnsafePointer(to: v) { try write($0) } }
        case .ints(let v):
            try replaceAttribute(name, type: int64.0, memType: int64.1, count: v.count) { write in try v.withUnsafeBytes { try write($0.baseAddress!) } }
        case .doubles(let v):
            try replaceAttribute(name, type: float64.0, memType: float64.1, count: v.count) { write in try v.withUnsafeBytes { try write($0.baseAddress!) } }
        case .string(let s):
            try HDF5Strings.withFixedLengthBuffer([s], what: "attribute '\(name)'", holder: self) { type, buffer in
                try replaceAttribute(name, type: type, memType: type, count: nil) { write in try write(buffer) }
            }
        case .strings(let v):
            try HDF5Strings.withFixedLengthBuffer(v, what: "attribute '\(name)'", holder: self) { type, buffer in
                try replaceAttribute(name, type: type, memType: type, count: v.count) { write in try write(buffer) }
            }
        }
    }

    /// Deletes any attribute `name`, creates it with `type` as a scalar (`count` nil) or a list, and
    /// lets `body` hand the values to the write it is given.
    private func replaceAttribute(_ name: String, type fileType: hid_t, memType: hid_t, count: Int?,
                                  _ body: ((UnsafeRawPointer) throws -> Void) throws -> Void) throws {
        if hasAttribute(name) {
            guard H5Adelete(objectID, name) >= 0 else { throw error("cannot replace attribute '\(name)'") }
        }
        let space: hid_t
        if let count {
            var dims = [hsize_t(count)]
            space = H5Screate_simple(1, &dims, nil)
        } else {
            space = H5Screate(H5S_SCALAR)
        }
        guard space >= 0 else { throw error("cannot create the dataspace for attribute '\(name)'") }
        defer { _ = H5Sclose(space) }
        let attr = H5Acreate2(objectID, name, fileType, space, irm_H5P_DEFAULT(), irm_H5P_DEFAULT())
        guard attr >= 0 else { throw error("cannot create attribute '\(name)'") }
        defer { _ = H5Aclose(attr) }
        try body { data in
            guard H5Awrite(attr, memType, data) >= 0 else { throw error("cannot write attribute '\(name)'") }
        }
    }
}

/// UTF-8 string I/O shared by datasets and attributes: irm writes fixed-length strings and reads
/// both fixed- and variable-length ones.
enum HDF5Strings {
    /// Builds a fixed-length, NUL-padded UTF-8 string type as wide as the longest of `strings` in
    /// bytes (at least 1), and the values packed at that width, valid for the duration of `body`.
    /// Each string ends at its first NUL, as it would as a C string. Fixed-length values lie in the
    /// object header (attributes) or the dataset's own storage, never in the global heap.
    static func withFixedLengthBuffer<R>(_ strings: [String], what: String, holder: some HDF5AttributeHolder,
                                         _ body: (hid_t, UnsafeRawPointer) throws -> R) throws -> R {
        let encoded = strings.map { Array($0.utf8.prefix { $0 != 0 }) }
        let width = max(1, encoded.map(\.count).max() ?? 0)
        guard width <= Int(UInt32.max) else { throw holder.error("\(what) is \(width) bytes long; HDF5 strings hold at most 4 GiB") }
        let type = H5Tcopy(irm_H5T_C_S1())
        guard type >= 0 else { throw holder.error("cannot make a string type for \(what)") }
        defer { _ = H5Tclose(type) }
        guard H5Tset_size(type, width) >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0, H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0 else {
            throw holder.error("cannot make a \(width)-byte string type for \(what)")
        }
        var packed = [UInt8](repeating: 0, count: width * max(1, encoded.count))
        for (index, bytes) in encoded.enumerated() {
            packed.replaceSubrange((index * width)..<(index * width + bytes.count), with: bytes)
        }
        return try packed.withUnsafeBytes { try body(type, $0.baseAddress!) }
    }

    /// Reads `count` strings with `read(memType, buffer)`, whether the stored type is variable- or
    /// fixed-length (`HDF5VariableLengthStrings`). Values are cut at their first NUL. The caller has checked `count`
    /// against the file's size; fixed-length values are checked here before their buffer is made.
    static func read(
        count: Int, fileType: hid_t, what: String, holder: some HDF5AttributeHolder,
        _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t
    ) throws -> [String] {
        let fileSize = holder.file.sizeOnDisk
        if H5Tis_variable_str(fileType) > 0 {
            // Read without libhdf5's global-heap code, which trusts a damaged heap.
            return try HDF5VariableLengthStrings.read(count: count, what: what, holder: holder, read)
        }
        let width = H5Tget_size(fileType)
        guard width > 0 else { throw holder.error("\(what) has a zero-width string type") }
        let (bytes, overflow) = width.multipliedReportingOverflow(by: count)
        guard !overflow, bytes <= fileSize else {
            throw HDF5Error(file: holder.file.path, object: holder.path,
                            message: "\(what) declares \(count) strings of \(width) bytes, more than the \(fileSize)-byte file holds; the file is corrupt")
        }
        // The file's own type, so that libhdf5 copies the bytes: converting to another padding
        // (NUL-terminated from NUL-padded) would drop the last byte of a value that fills its width.
        let memType = H5Tcopy(fileType)
        guard memType >= 0 else { throw holder.error("cannot read the type of \(what)") }
        defer { _ = H5Tclose(memType) }
        var buffer = [UInt8](repeating: 0, count: max(1, bytes))
        let status = buffer.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
        guard status >= 0 else { throw holder.error("cannot read \(what)") }
        return (0..<count).map { index in
            let slice = buffer[(index * width)..<((index + 1) * width)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        }
    }
}
