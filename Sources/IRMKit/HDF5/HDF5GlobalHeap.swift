import CHDF5
import Foundation

/// Variable-length strings, read without libhdf5's global-heap code.
///
/// h5py stores `str` attributes and string datasets as variable-length strings. The attribute or
/// dataset holds, per string, a *heap ID*: the string's length (4 bytes), the file address of a
/// global heap collection and the index of an object in it (4 bytes). The bytes themselves live in
/// that collection, which has no checksum. libhdf5 1.10 parses a collection trusting every size in
/// it, so a damaged one makes it copy past its buffers, loop forever or allocate gigabytes
/// (Tests/Fixtures/fuzz/). irm therefore never lets libhdf5 convert these strings:
///
/// - a conversion registered with libhdf5 once (`register`) turns the file's variable-length
///   string type into an opaque type of the same width tagged `rawTag`, as the identity, so that
///   `H5Aread` and `H5Dread` hand irm the stored heap IDs untouched;
/// - `GlobalHeapReader` reads each collection from the file itself and checks every size against
///   the collection and the file before it uses it.
///
/// The collection layout follows the HDF5 file format specification ("Global Heap"): signature
/// `GCOL`, version 1, three reserved bytes, the collection's size in bytes (header included); then
/// objects, each a 2-byte index, a 2-byte reference count, 4 reserved bytes, the object's size and
/// its data padded to 8 bytes. Index 0 is free space, whose size counts its own header.
enum HDF5VariableLengthStrings {
    /// The opaque tag that selects irm's identity conversion.
    static let rawTag = "irm: variable-length heap IDs as stored"

    /// The largest global heap collection irm reads (libhdf5 writes 4 KiB collections, larger only
    /// to hold one larger string).
    static let largestCollection = 256 << 20

    /// Whether libhdf5 accepted the conversion (checked on every read, so that a failure is an
    /// error naming the object rather than a fallback to libhdf5's own conversion).
    static let registered: Bool = {
        let source = H5Tcopy(irm_H5T_C_S1())
        let destination = H5Tcreate(H5T_OPAQUE, 16)
        defer {
            if source >= 0 { _ = H5Tclose(source) }
            if destination >= 0 { _ = H5Tclose(destination) }
        }
        guard source >= 0, destination >= 0, H5Tset_size(source, irm_H5T_VARIABLE()) >= 0,
              H5Tset_tag(destination, rawTag) >= 0 else { return false }
        // A soft conversion: libhdf5 offers it every path from a variable-length type to an opaque
        // one, and `heapIDConversion` accepts only the path to irm's tagged type of equal width.
        return H5Tregister(H5T_PERS_SOFT, "irm variable-length heap IDs", source, destination, heapIDConversion) >= 0
    }()

    /// Reads `count` variable-length strings with `read(memoryType, buffer)` (an `H5Aread` or
    /// `H5Dread`), each cut at its first NUL as libhdf5's C strings are.
    static func read(count: Int, what: String, holder: some HDF5AttributeHolder,
                     _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        let file = holder.file
        guard registered else {
            throw HDF5Error(file: file.path, object: holder.path, message: "cannot read \(what): libhdf5 refused irm's reader of variable-length strings")
        }
        let addressing = try file.addressing()
        let width = 4 + addressing.offsetSize + 4
        let fileSize = file.sizeOnDisk
        guard count <= fileSize / width else {
            throw HDF5Error(file: file.path, object: holder.path,
                            message: "\(what) declares \(count) variable-length strings, more than the \(fileSize)-byte file can hold; the file is corrupt")
        }
        let memoryType = H5Tcreate(H5T_OPAQUE, width)
        guard memoryType >= 0 else { throw holder.error("cannot make the type to read \(what)") }
        defer { _ = H5Tclose(memoryType) }
        guard H5Tset_tag(memoryType, rawTag) >= 0 else { throw holder.error("cannot make the type to read \(what)") }
        var ids = [UInt8](repeating: 0, count: max(1, count * width))
        let status = ids.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        guard status >= 0 else { throw holder.error("cannot read \(what)") }

        var heap = try GlobalHeapReader(file: file, addressing: addressing, object: holder.path)
        return try (0..<count).map { index in
            let id = HeapID(ids[(index * width)..<((index + 1) * width)], offsetSize: addressing.offsetSize)
            let name = count == 1 ? what : "\(what) (string \(index))"
            let bytes = try heap.object(id, what: name)
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// One stored heap ID.
    struct HeapID {
        var length: UInt64
        var collection: UInt64
        var index: UInt64

        init(_ bytes: ArraySlice<UInt8>, offsetSize: Int) {
            let start = bytes.startIndex
            length = HDF5RawReader.littleEndian(bytes[start..<(start + 4)])
            collection = HDF5RawReader.littleEndian(bytes[(start + 4)..<(start + 4 + offsetSize)])
            index = HDF5RawReader.littleEndian(bytes[(start + 4 + offsetSize)..<(start + 8 + offsetSize)])
        }
    }
}

/// libhdf5 calls this with `H5T_CONV_INIT` to ask whether it converts a path, then with
/// `H5T_CONV_CONV` to convert. The path it takes is the file's variable-length string type to irm's
/// tagged opaque type of the same width, where converting means leaving the bytes as they are.
private let heapIDConversion: H5T_conv_t = { source, destination, cdata, _, _, _, _, _, _ in
    guard let cdata else { return -1 }
    switch cdata.pointee.command {
    case H5T_CONV_INIT:
        guard H5Tis_variable_str(source) > 0, H5Tget_class(destination) == H5T_OPAQUE,
              H5Tget_size(source) == H5Tget_size(destination), let tag = H5Tget_tag(destination) else { return -1 }
        defer { H5free_memory(tag) }
        guard String(cString: tag) == HDF5VariableLengthStrings.rawTag else { return -1 }
        cdata.pointee.need_bkg = H5T_BKG_NO
        return 0
    default:
        // H5T_CONV_CONV: source and destination have the same width, so the bytes in place are
        // already the result. H5T_CONV_FREE: nothing was allocated.
        return 0
    }
}

/// Reads objects of a file's global heap collections, checking every size before using it.
struct GlobalHeapReader {
    private let file: HDF5File
    private let addressing: HDF5File.Addressing
    private let object: String
    private let reader: HDF5RawReader
    private var fileSize: UInt64 { reader.fileSize }
    private var collections: [UInt64: [UInt8]] = [:]

    init(file: HDF5File, addressing: HDF5File.Addressing, object: String) throws {
        self.file = file
        self.addressing = addressing
        self.object = object
        self.reader = try HDF5RawReader(file: file, object: object)
    }

    private func corrupt(_ message: String) -> HDF5Error {
        HDF5Error(file: file.path, object: object, message: "\(message); the file is corrupt")
    }

    /// The bytes of the object `id` names. A zero length, or the address 0 libhdf5 writes for a
    /// null string, is the empty string.
    mutating func object(_ id: HDF5VariableLengthStrings.HeapID, what: String) throws -> [UInt8] {
        if id.length == 0 || id.collection == 0 { return [] }
        let collection = try self.collection(at: id.collection, what: what)
        let lengthSize = addressing.lengthSize
        let headerSize = HDF5RawReader.align8(8 + lengthSize)
        let objectHeaderSize = 8 + lengthSize
        var position = headerSize
        var found: [UInt8]?
        while position + objectHeaderSize <= collection.count {
            let index = HDF5RawReader.littleEndian(collection[position..<(position + 2)])
            let size = HDF5RawReader.littleEndian(collection[(position + 8)..<(position + 8 + lengthSize)])
            let remaining = UInt64(collection.count - position)
            // Free space (index 0) counts its own header; an object's data follows its header,
            // padded to 8 bytes.
            let span: UInt64
            if index == 0 {
                span = size
                guard span >= UInt64(objectHeaderSize) else {
                    throw corrupt("\(what): free space of \(size) bytes in the global heap collection at \(id.collection), less than its own header")
                }
            } else {
                guard size <= remaining else {
                    throw corrupt("\(what): object \(index) of the global heap collection at \(id.collection) declares \(size) bytes, more than the collection's remaining \(remaining)")
                }
                span = UInt64(objectHeaderSize) + (size + 7) / 8 * 8
            }
            guard span <= remaining else {
                throw corrupt("\(what): object \(index) of the global heap collection at \(id.collection) runs \(span) bytes, past the collection's end (\(remaining) bytes left)")
            }
            if index != 0 && index == id.index {
                guard found == nil else {
                    throw corrupt("\(what): the global heap collection at \(id.collection) holds object \(index) twice")
                }
                let start = position + objectHeaderSize
                found = Array(collection[start..<(start + Int(size))])
            }
            position += Int(span)
        }
        guard let found else {
            throw corrupt("\(what): the global heap collection at \(id.collection) has no object \(id.index)")
        }
        guard UInt64(found.count) == id.length else {
            throw corrupt("\(what) declares \(id.length) bytes, but its object in the global heap collection at \(id.collection) holds \(found.count)")
        }
        return found
    }

    /// The whole collection at file address `address`, read once.
    private mutating func collection(at address: UInt64, what: String) throws -> [UInt8] {
        if let cached = collections[address] { return cached }
        let headerSize = HDF5RawReader.align8(8 + addressing.lengthSize)
        let (start, overflow) = address.addingReportingOverflow(addressing.base)
        guard !overflow, start <= fileSize, fileSize - start >= UInt64(headerSize) else {
            throw corrupt("\(what) points at a global heap collection at address \(address), outside the \(fileSize)-byte file")
        }
        let header = try bytes(at: start, count: headerSize)
        guard header.starts(with: Array("GCOL".utf8)) else {
            throw corrupt("\(what) points at address \(address), which holds no global heap collection")
        }
        guard header[4] == 1 else {
            throw corrupt("\(what): the global heap collection at \(address) has version \(header[4]), expected 1")
        }
        let size = HDF5RawReader.littleEndian(header[8..<(8 + addressing.lengthSize)])
        guard size >= UInt64(headerSize), size <= fileSize - start else {
            throw corrupt("\(what): the global heap collection at \(address) declares \(size) bytes, but the file has \(fileSize - start) from there")
        }
        guard size <= UInt64(HDF5VariableLengthStrings.largestCollection) else {
            throw HDF5Error(file: file.path, object: object,
                            message: "\(what): the global heap collection at \(address) declares \(size) bytes; irm reads collections of at most \(HDF5VariableLengthStrings.largestCollection >> 20) MiB")
        }
        let collection = try bytes(at: start, count: Int(size))
        collections[address] = collection
        return collection
    }

    private func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        try reader.bytes(at: offset, count: count, what: "a global heap collection")
    }
}

extension HDF5File {
    /// How the file encodes addresses and lengths (its superblock's "size of offsets" and "size of
    /// lengths"), and where address 0 lies (after any user block).
    struct Addressing {
        var offsetSize: Int
        var lengthSize: Int
        var base: UInt64
    }

    func addressing() throws -> Addressing {
        let plist = H5Fget_create_plist(id)
        guard plist >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot read the file's creation properties", libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Pclose(plist) }
        var offsetSize = 0
        var lengthSize = 0
        var userBlock: hsize_t = 0
        guard H5Pget_sizes(plist, &offsetSize, &lengthSize) >= 0, H5Pget_userblock(plist, &userBlock) >= 0 else {
            throw HDF5Error(file: path, object: nil, message: "cannot read the file's address sizes", libraryDetail: HDF5Library.takeErrorDetail())
        }
        guard [2, 4, 8].contains(offsetSize), [2, 4, 8].contains(lengthSize) else {
            throw HDF5Error(file: path, object: nil, message: "declares \(offsetSize)-byte addresses and \(lengthSize)-byte lengths (expected 2, 4 or 8); the file is corrupt")
        }
        return Addressing(offsetSize: offsetSize, lengthSize: lengthSize, base: UInt64(userBlock))
    }
}
