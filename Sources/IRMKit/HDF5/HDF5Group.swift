import CHDF5
import Foundation

/// A group inside an open HDF5 file. Keeps its file open for as long as it lives.
public final class HDF5Group: HDF5AttributeHolder {
    public let file: HDF5File
    public let path: String
    let id: hid_t
    public var objectID: hid_t { id }

    private init(file: HDF5File, id: hid_t, path: String) {
        self.file = file
        self.id = id
        self.path = path
    }

    deinit { _ = H5Gclose(id) }

    static func open(in file: HDF5File, parentID: hid_t, name: String, path: String) throws -> HDF5Group {
        let id = H5Gopen2(parentID, name, irm_H5P_DEFAULT())
        guard id >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot open the group",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        return HDF5Group(file: file, id: id, path: path)
    }

    func childPath(_ name: String) -> String {
        path == "/" ? "/" + name : path + "/" + name
    }

    /// Whether a link called `name` exists directly in this group.
    public func contains(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && H5Lexists(id, name, irm_H5P_DEFAULT()) > 0
    }

    /// What `name` is, or nil when there is no such link (`.other` when it cannot be opened).
    public func kind(of name: String) -> HDF5ObjectKind? {
        guard contains(name) else { return nil }
        // Opening an external link would open the file it names.
        guard irm_link_is_hard(id, name) == 1 else { return .other }
        return (try? openedKind(of: name)) ?? .other
    }

    /// The kind of the hard link `name`'s object; an error naming it when libhdf5 cannot open its
    /// header (a damaged file: in the 1.8 format irm writes, a header that fails its checksum).
    private func openedKind(of name: String) throws -> HDF5ObjectKind {
        try checkHeader(of: name)
        let object = H5Oopen(id, name, irm_H5P_DEFAULT())
        guard object >= 0 else {
            throw HDF5Error(file: file.path, object: childPath(name), message: "cannot open the object; the file may be truncated or corrupt",
                            libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Oclose(object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// The names of the links in this group, sorted by name (HDF5's name index).
    public func childNames() throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(id, &info) >= 0 else { throw error("cannot list the group") }
        var names: [String] = []
        var seen = Set<String>()
        names.reserveCapacity(Int(info.nlinks))
        for index in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, irm_H5P_DEFAULT())
            guard length >= 0 else { throw error("cannot read the name of link \(index)") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, irm_H5P_DEFAULT())
            let name = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // A damaged link index can list one name twice; callers key dictionaries by name.
            guard seen.insert(name).inserted else {
                throw error("lists the link \"\(name)\" more than once; expected unique link names (the file is corrupt)")
            }
            names.append(name)
        }
        return names
    }

    /// Opens the child group `name`, with an error that says what was found instead when it is not a
    /// group.
    public func group(_ name: String) throws -> HDF5Group {
        if contains(name) { try requireHardLink(name) }
        switch contains(name) ? try openedKind(of: name) : nil {
        case .group: return try HDF5Group.open(in: file, parentID: id, name: name, path: childPath(name))
        case nil: throw HDF5Error(file: file.path, object: childPath(name), message: "expected a group, found nothing")
        case .some(let other): throw HDF5Error(file: file.path, object: childPath(name), message: "expected a group, found a \(other)")
        }
    }

    /// Creates the child group `name`, without modification times, its links kept in its object
    /// header (`HDF5File.compactLinkLimit`).
    public func createGroup(_ name: String) throws -> HDF5Group {
        let gcpl = H5Pcreate(irm_H5P_GROUP_CREATE())
        defer { if gcpl >= 0 { _ = H5Pclose(gcpl) } }
        guard gcpl >= 0, H5Pset_obj_track_times(gcpl, false) >= 0,
              H5Pset_link_phase_change(gcpl, HDF5File.compactLinkLimit, HDF5File.compactLinkLimit) >= 0 else {
            throw error("cannot set up the group's creation properties", object: childPath(name))
        }
        let gid = H5Gcreate2(id, name, irm_H5P_DEFAULT(), gcpl, irm_H5P_DEFAULT())
        guard gid >= 0 else { throw error("cannot create the group", object: childPath(name)) }
        return HDF5Group(file: file, id: gid, path: childPath(name))
    }

    /// Opens the dataset `name`.
    public func dataset(_ name: String) throws -> HDF5Dataset {
        if contains(name) { try requireHardLink(name) }
        switch contains(name) ? try openedKind(of: name) : nil {
        case .dataset: return try HDF5Dataset.open(in: self, name: name)
        case nil: throw HDF5Error(file: file.path, object: childPath(name), message: "expected a dataset, found nothing")
        case .some(let other): throw HDF5Error(file: file.path, object: childPath(name), message: "expected a dataset, found a \(other)")
        }
    }

    // MARK: Writing datasets

    /// Writes `values` as a new dataset of the given row-major `shape` (`[]` for a scalar).
    /// `BFloat16` values are stored as uint16 with the attribute `dtype = "bfloat16"`.
    public func createDataset<T: HDF5Numeric>(_ name: String, values: [T], shape: [Int]) throws {
        try values.withUnsafeBytes { bytes in
            try createDataset(name, rawBytes: bytes, elementType: T.hdf5ElementType, typeID: T.hdf5TypeID, shape: shape)
        }
    }

    /// Writes raw little-endian element bytes as a new dataset. `elementType` decides the stored
    /// HDF5 type; the byte count must equal the shape's element count times the element width.
    public func createDataset(_ name: String, rawBytes: UnsafeRawBufferPointer, elementType: HDF5ElementType, shape: [Int]) throws {
        let typeID: hid_t
        switch elementType {
        case .float16: typeID = HDF5HalfType.id
        case .bfloat16, .uint16: typeID = irm_H5T_NATIVE_UINT16()
        case .float32: typeID = irm_H5T_NATIVE_FLOAT()
        case .float64: typeID = irm_H5T_NATIVE_DOUBLE()
        case .int32: typeID = irm_H5T_NATIVE_INT32()
        case .int64: typeID = irm_H5T_NATIVE_INT64()
        case .string, .unsupported:
            throw HDF5Error(file: file.path, object: childPath(name), message: "cannot write raw bytes as \(elementType)")
        }
        try createDataset(name, rawBytes: rawBytes, elementType: elementType, typeID: typeID, shape: shape)
    }

    private func createDataset(_ name: String, rawBytes: UnsafeRawBufferPointer, elementType: HDF5ElementType,
                               typeID: hid_t, shape: [Int]) throws {
        let object = childPath(name)
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw HDF5Error(file: file.path, object: object, message: "shape \(shape) has a negative dimension")
        }
        let count = shape.reduce(1, *)
        guard let width = elementType.byteWidth, rawBytes.count == count * width else {
            throw HDF5Error(file: file.path, object: object,
                            message: "expected \(count) \(elementType) values for shape \(shape), found \(rawBytes.count) bytes")
        }
        let dataset = try makeDataset(name, typeID: typeID, shape: shape)
        defer { _ = H5Dclose(dataset) }
        if count > 0 {
            guard H5Dwrite(dataset, typeID, irm_H5S_ALL(), irm_H5S_ALL(), irm_H5P_DEFAULT(), rawBytes.baseAddress) >= 0 else {
                throw error("cannot write the dataset", object: object)
            }
        }
        if elementType == .bfloat16 {
            let written = try HDF5Dataset.open(in: self, name: name)
            try written.setAttribute(HDF5BFloat16Marker.attributeName, .string(HDF5BFloat16Marker.attributeValue))
        }
    }

    /// Writes a scalar, fixed-length UTF-8 string dataset as long as `value` (at least 1 byte), whose
    /// bytes lie in the dataset's own storage rather than the global heap. h5py reads it as `bytes`.
    public func createStringDataset(_ name: String, value: String) throws {
        try HDF5Strings.withFixedLengthBuffer([value], what: "the string dataset", holder: self) { type, buffer in
            let dataset = try makeDataset(name, typeID: type, shape: [])
            defer { _ = H5Dclose(dataset) }
            guard H5Dwrite(dataset, type, irm_H5S_ALL(), irm_H5S_ALL(), irm_H5P_DEFAULT(), buffer) >= 0 else {
                throw error("cannot write the string dataset", object: childPath(name))
            }
        }
    }

    private func makeDataset(_ name: String, typeID: hid_t, shape: [Int]) throws -> hid_t {
        let object = childPath(name)
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            var dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(shape.count), &dims, nil)
        }
        guard space >= 0 else { throw error("cannot create a dataspace of shape \(shape)", object: object) }
        defer { _ = H5Sclose(space) }
        let dcpl = H5Pcreate(irm_H5P_DATASET_CREATE())
        defer { if dcpl >= 0 { _ = H5Pclose(dcpl) } }
        if dcpl >= 0 { _ = H5Pset_obj_track_times(dcpl, false) }
        let dataset = H5Dcreate2(id, name, typeID, space, irm_H5P_DEFAULT(), dcpl >= 0 ? dcpl : irm_H5P_DEFAULT(), irm_H5P_DEFAULT())
        guard dataset >= 0 else {
            let exists = contains(name)
            throw error(exists ? "cannot create the dataset: the name is already taken" : "cannot create the dataset", object: object)
        }
        return dataset
    }
}
