import CHDF5
import Foundation

/// Attribute messages, checked by irm before libhdf5 decodes them.
///
/// Every attribute lookup (`H5Aexists`, `H5Aopen`, `H5Aget_name_by_idx`) makes libhdf5 1.10 decode
/// each attribute message in the object's header, and its decoder trusts the sizes inside the
/// message: the name's length, the datatype's and dataspace's sizes, and the value's size (the
/// dataspace's element count times the datatype's width) are copied without being compared with
/// the message's own size. A damaged or hostile message makes it read past the header (the
/// checkpoint fuzzer found a heap-buffer-overflow and a use-after-free in `H5O__msg_iterate_real`
/// this way: Tests/Fixtures/fuzz/). Version 1 object headers, h5py's default, have no checksum.
///
/// So before libhdf5 opens an object, and before the first attribute call on it, irm reads the
/// object's header itself (version 1 or 2, every continuation chunk) and checks that each attribute
/// message holds everything libhdf5 will read from it. A dataset's dataspace, datatype width and
/// layout are checked the same way (libhdf5 1.10 wrote past an array in `H5D__chunk_set_sizes`
/// when a damaged dataspace declared 7·10^17 rows). Attributes irm cannot check this way are refused: those with a compound,
/// enum, array or non-string variable-length type, or a shared (committed) datatype or dataspace,
/// and attribute messages stored in the shared-message table. Attributes in dense storage (a
/// fractal heap, used for more than 8 attributes in files with 1.8-format headers, or for values
/// over 64 KiB) are outside the header and are not checked here (docs/security.md).
enum HDF5ObjectHeader {
    /// At most this many header chunks (the first and its continuations) per object.
    static let largestChunkCount = 4096
    /// At most this many bytes in one header chunk (libhdf5 keeps attributes over 64 KiB outside).
    static let largestChunk = 64 << 20

    /// The largest number of elements a dataset may declare (bytes at 8 per element within an Int).
    static let largestElementCount: UInt64 = 1 << 60

    /// Checks the messages of the object at file address `address`.
    static func checkMessages(at address: UInt64, file: HDF5File, object: String) throws {
        let addressing = try file.addressing()
        let reader = try HDF5RawReader(file: file, object: object)
        func corrupt(_ message: String) -> HDF5Error {
            HDF5Error(file: file.path, object: object, message: "\(message); the file is corrupt")
        }
        let (start, overflow) = address.addingReportingOverflow(addressing.base)
        guard !overflow else { throw corrupt("its object header address \(address) is outside the file") }
        let prefix = try reader.bytes(at: start, count: 16, what: "the object header")
        var chunks: [(offset: UInt64, length: UInt64)] = []
        let version: Int
        var messagesStart: UInt64
        // Version 2 headers whose flags have bit 2 set give every message a 2-byte creation order.
        var creationOrder = false
        if prefix.starts(with: Array("OHDR".utf8)) {
            version = 2
            guard prefix[4] == 2 else { throw corrupt("its object header has version \(prefix[4]) after OHDR, expected 2") }
            let flags = prefix[5]
            creationOrder = flags & 0x04 != 0
            var position = 6
            if flags & 0x20 != 0 { position += 16 }  // access, modification, change and birth times
            if flags & 0x10 != 0 { position += 4 }   // attribute storage phase change values
            let sizeBytes = 1 << Int(flags & 0x03)
            let fields = try reader.bytes(at: start, count: position + sizeBytes, what: "the object header")
            let length = HDF5RawReader.littleEndian(fields[position..<(position + sizeBytes)])
            messagesStart = start + UInt64(position + sizeBytes)
            chunks.append((messagesStart, length))
        } else {
            version = 1
            guard prefix[0] == 1 else { throw corrupt("its object header has version \(prefix[0]), expected 1 or an OHDR signature") }
            let length = HDF5RawReader.littleEndian(prefix[8..<12])
            messagesStart = start + 16
            chunks.append((messagesStart, length))
        }

        var seen: Set<UInt64> = []
        var index = 0
        var attributeNumber = 0
        var dataset = DatasetMessages()
        while index < chunks.count {
            let chunk = chunks[index]
            index += 1
            guard chunks.count <= largestChunkCount, seen.insert(chunk.offset).inserted else {
                throw corrupt("its object header's continuation chunks repeat or exceed \(largestChunkCount)")
            }
            guard chunk.length <= UInt64(largestChunk) else {
                throw corrupt("an object header chunk at byte \(chunk.offset) declares \(chunk.length) bytes")
            }
            var bytes = try reader.bytes(at: chunk.offset, count: Int(chunk.length), what: "an object header chunk")
            if version == 2, index > 1 {
                // A continuation chunk of a version 2 header: "OCHK", messages, a checksum.
                guard bytes.count >= 8, bytes.starts(with: Array("OCHK".utf8)) else {
                    throw corrupt("an object header continuation chunk at byte \(chunk.offset) has no OCHK signature")
                }
                bytes = Array(bytes[4..<(bytes.count - 4)])
            }
            let headerSize = version == 1 ? 8 : 4
            var position = 0
            while position + headerSize <= bytes.count {
                let type: UInt64, size: Int, flags: UInt8
                var dataStart = position + headerSize
                if version == 1 {
                    type = HDF5RawReader.littleEndian(bytes[position..<(position + 2)])
                    size = Int(HDF5RawReader.littleEndian(bytes[(position + 2)..<(position + 4)]))
                    flags = bytes[position + 4]
                } else {
                    type = UInt64(bytes[position])
                    size = Int(HDF5RawReader.littleEndian(bytes[(position + 1)..<(position + 3)]))
                    flags = bytes[position + 3]
                    if creationOrder { dataStart += 2 }
                }
                guard dataStart <= bytes.count, size <= bytes.count - dataStart else {
                    throw corrupt("object header message \(type) at byte \(chunk.offset + UInt64(position)) declares \(size) bytes, more than its chunk holds")
                }
                let data = bytes[dataStart..<(dataStart + size)]
                switch type {
                case 0x10:  // continuation
                    let need = addressing.offsetSize + addressing.lengthSize
                    guard data.count >= need else { throw corrupt("an object header continuation message holds \(data.count) bytes, expected \(need)") }
                    let base = data.startIndex
                    let offset = HDF5RawReader.littleEndian(data[base..<(base + addressing.offsetSize)])
                    let length = HDF5RawReader.littleEndian(data[(base + addressing.offsetSize)..<(base + need)])
                    let (absolute, overflow) = offset.addingReportingOverflow(addressing.base)
                    guard !overflow, absolute <= reader.fileSize, length <= reader.fileSize - absolute else {
                        throw corrupt("an object header continuation points at \(length) bytes at address \(offset), outside the \(reader.fileSize)-byte file")
                    }
                    chunks.append((absolute, length))
                case 0x0C:  // attribute
                    attributeNumber += 1
                    guard flags & 0x02 == 0 else {
                        throw HDF5Error(file: file.path, object: object,
                                        message: "attribute \(attributeNumber) is stored in the file's shared-message table, which irm does not check; rewrite the file without shared attributes")
                    }
                    try checkAttributeMessage(Array(data), number: attributeNumber, addressing: addressing, file: file, object: object)
                case 0x01:  // dataspace
                    dataset.elements = try dataspaceElements(Array(data), addressing: addressing) { corrupt("its dataspace \($0)") }
                    dataset.rank = Int(data[data.startIndex + 1])
                case 0x03:  // datatype
                    guard data.count >= 8 else { throw corrupt("its datatype message holds \(data.count) bytes") }
                    dataset.width = HDF5RawReader.littleEndian(data[(data.startIndex + 4)..<(data.startIndex + 8)])
                case 0x08:  // layout
                    dataset.chunk = try chunkShape(Array(data), addressing: addressing) { corrupt("its layout message \($0)") }
                default:
                    break
                }
                position = dataStart + size
            }
        }
        try dataset.check(corrupt)
    }

    /// What a dataset's header declares, checked together once the header is read.
    private struct DatasetMessages {
        var elements: UInt64?
        var rank: Int?
        var width: UInt64?
        var chunk: [UInt64]?

        func check(_ corrupt: (String) -> HDF5Error) throws {
            if let elements, let width {
                let (bytes, overflow) = elements.multipliedReportingOverflow(by: max(width, 1))
                guard !overflow, bytes <= UInt64(Int.max) else {
                    throw corrupt("it declares \(elements) values of \(width) bytes, more than any file holds")
                }
            }
            guard let chunk else { return }
            // The layout lists one extent per dimension and then the element's width.
            if let rank, chunk.count != rank + 1 {
                throw corrupt("its chunks have \(chunk.count - 1) dimensions and its dataspace \(rank)")
            }
            var bytes: UInt64 = 1
            for extent in chunk {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: extent)
                guard !overflow, product < 1 << 32 else { throw corrupt("its chunk shape \(chunk.dropLast()) exceeds the 4 GiB HDF5 allows in one chunk") }
                bytes = product
            }
        }
    }

    /// The number of elements a dataspace message declares.
    static func dataspaceElements(_ space: [UInt8], addressing: HDF5File.Addressing, _ corrupt: (String) -> HDF5Error) throws -> UInt64 {
        guard space.count >= 4 else { throw corrupt("holds \(space.count) bytes, too few") }
        let version = Int(space[0]), rank = Int(space[1]), flags = space[2]
        guard version == 1 || version == 2 else { throw corrupt("has version \(version), expected 1 or 2") }
        guard rank <= 32 else { throw corrupt("has rank \(rank), more than HDF5's 32") }
        let header = version == 1 ? 8 : 4
        let extentBytes = rank * addressing.lengthSize * (flags & 0x01 != 0 ? 2 : 1)
        guard header + extentBytes <= space.count else {
            throw corrupt("of rank \(rank) needs \(header + extentBytes) bytes and holds \(space.count)")
        }
        if version == 2 && space[3] == 2 { return 0 }  // the null dataspace
        var elements: UInt64 = 1
        for dimension in 0..<rank {
            let at = header + dimension * addressing.lengthSize
            let extent = HDF5RawReader.littleEndian(space[at..<(at + addressing.lengthSize)])
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= largestElementCount else { throw corrupt("declares more elements than any file holds") }
            elements = product
        }
        return elements
    }

    /// A chunked layout's extents (the last is the element's width), or nil for other layouts.
    static func chunkShape(_ layout: [UInt8], addressing: HDF5File.Addressing, _ corrupt: (String) -> HDF5Error) throws -> [UInt64]? {
        guard layout.count >= 2 else { throw corrupt("holds \(layout.count) bytes, too few") }
        let version = Int(layout[0]), layoutClass = Int(layout[1])
        guard version == 3 || version == 4 else {
            throw corrupt("has version \(version); irm reads layout versions 3 and 4 (HDF5 1.6 and later)")
        }
        guard layoutClass == 2 else { return nil }
        var position = 2
        let dimensions: Int, extentBytes: Int
        if version == 3 {
            guard layout.count >= 3 else { throw corrupt("is cut short") }
            dimensions = Int(layout[2])
            position = 3 + addressing.offsetSize
            extentBytes = 4
        } else {
            guard layout.count >= 5 else { throw corrupt("is cut short") }
            dimensions = Int(layout[3])
            extentBytes = Int(layout[4])
            position = 5
            guard (1...8).contains(extentBytes) else { throw corrupt("encodes chunk extents in \(extentBytes) bytes, expected 1 to 8") }
        }
        guard (2...33).contains(dimensions) else { throw corrupt("declares \(dimensions) chunk dimensions, expected 2 to 33") }
        guard position + dimensions * extentBytes <= layout.count else { throw corrupt("holds fewer bytes than its \(dimensions) chunk extents need") }
        var extents: [UInt64] = []
        for dimension in 0..<dimensions {
            let at = position + dimension * extentBytes
            let extent = HDF5RawReader.littleEndian(layout[at..<(at + extentBytes)])
            guard extent > 0 else { throw corrupt("declares a chunk extent of 0") }
            extents.append(extent)
        }
        return extents
    }

    /// Checks that one attribute message holds its name, datatype, dataspace and value.
    static func checkAttributeMessage(_ m: [UInt8], number: Int, addressing: HDF5File.Addressing, file: HDF5File, object: String) throws {
        var label = "attribute \(number)"
        func corrupt(_ message: String) -> HDF5Error {
            HDF5Error(file: file.path, object: object, message: "\(label): \(message); the file is corrupt")
        }
        func refuse(_ message: String) -> HDF5Error {
            HDF5Error(file: file.path, object: object, message: "\(label): \(message)")
        }
        guard m.count >= 8 else { throw corrupt("its message holds \(m.count) bytes, too few for its header") }
        let version = Int(m[0])
        guard (1...3).contains(version) else { throw corrupt("its message has version \(version), expected 1, 2 or 3") }
        if version >= 2, m[1] & 0x03 != 0 {
            throw refuse("uses a shared (committed) datatype or dataspace, which irm does not check; rewrite the file without committed types")
        }
        let nameLength = Int(HDF5RawReader.littleEndian(m[2..<4]))
        let typeSize = Int(HDF5RawReader.littleEndian(m[4..<6]))
        let spaceSize = Int(HDF5RawReader.littleEndian(m[6..<8]))
        func pad(_ size: Int) -> Int { version == 1 ? HDF5RawReader.align8(size) : size }
        let nameStart = version == 3 ? 9 : 8
        let typeStart = nameStart + pad(nameLength)
        let spaceStart = typeStart + pad(typeSize)
        let dataStart = spaceStart + pad(spaceSize)
        guard nameLength >= 1, dataStart <= m.count, spaceStart + spaceSize <= m.count, typeStart + typeSize <= m.count else {
            throw corrupt("its name (\(nameLength) bytes), datatype (\(typeSize)) and dataspace (\(spaceSize)) do not fit in its \(m.count)-byte message")
        }
        let nameBytes = m[nameStart..<(nameStart + nameLength)].prefix { $0 != 0 }
        label = "attribute '\(String(decoding: nameBytes, as: UTF8.self))'"

        // The datatype: class and version in the first byte, the element's width in bytes 4-7,
        // then the class's properties, which libhdf5 reads as far as the class needs.
        guard typeSize >= 8 else { throw corrupt("its datatype holds \(typeSize) bytes, too few for a datatype") }
        let type = m[typeStart..<(typeStart + typeSize)]
        let typeClass = Int(type[type.startIndex] & 0x0f)
        let width = HDF5RawReader.littleEndian(type[(type.startIndex + 4)..<(type.startIndex + 8)])
        let propertyBytes: Int
        switch typeClass {
        case 0, 4: propertyBytes = 4          // fixed-point, bitfield: offset and precision
        case 1: propertyBytes = 12            // floating point: offset, precision, exponent and mantissa fields, bias
        case 2: propertyBytes = 2             // time: precision
        case 3, 7: propertyBytes = 0          // string, reference
        case 5: propertyBytes = Int(type[type.startIndex + 1])  // opaque: its tag's length
        case 9:
            // Variable-length: only strings, whose base type is one byte wide.
            guard type[type.startIndex + 1] & 0x0f == 1 else {
                throw refuse("is a variable-length sequence, which irm does not read; only numbers and strings are")
            }
            // The base type follows: a one-byte fixed-point datatype of 12 bytes.
            propertyBytes = 12
            guard typeSize >= 20, type[type.startIndex + 8] & 0x0f == 0 else {
                throw corrupt("its variable-length string type holds no valid base type")
            }
            // libhdf5 sizes the value's buffer by the width stored here, and reads it at the
            // width of a heap ID in this file: they must agree.
            let heapID = UInt64(4 + addressing.offsetSize + 4)
            guard width == heapID else {
                throw corrupt("its variable-length string type declares \(width)-byte elements, expected \(heapID)")
            }
        default:
            let kind = [6: "a compound", 8: "an enum (h5py writes bool this way)", 10: "an array"][typeClass] ?? "a class \(typeClass)"
            throw refuse("has \(kind) datatype, which irm does not read; only numbers and strings are (remove it, e.g. h5py `del f.attrs[name]`)")
        }
        guard typeSize >= 8 + propertyBytes else {
            throw corrupt("its datatype of class \(typeClass) holds \(typeSize) bytes, expected at least \(8 + propertyBytes)")
        }

        // The dataspace: version, rank, flags, then the extents (and maxima, when flagged).
        let space = Array(m[spaceStart..<(spaceStart + spaceSize)])
        let elements = try dataspaceElements(space, addressing: addressing) { corrupt("its dataspace \($0)") }
        let (valueBytes, overflow) = elements.multipliedReportingOverflow(by: width)
        guard !overflow, valueBytes <= UInt64(m.count - dataStart) else {
            throw corrupt("its value of \(elements) elements of \(width) bytes does not fit in its \(m.count)-byte message (\(m.count - dataStart) bytes left)")
        }
    }
}

extension HDF5AttributeHolder {
    /// Checks this object's attribute messages once (`HDF5ObjectHeader`), before any call that makes
    /// libhdf5 decode them.
    func checkAttributeMessages() throws {
        guard file.attributeChecks != nil else { return }
        var info = H5O_info_t()
        guard H5Oget_info2(objectID, &info, UInt32(H5O_INFO_BASIC)) >= 0 else {
            throw error("cannot read the object's header; the file may be corrupt")
        }
        try HDF5ObjectHeader.check(at: UInt64(info.addr), in: file, object: path)
    }
}

extension HDF5ObjectHeader {
    /// Checks the header at `address` once per file (a no-op in a file irm is writing).
    static func check(at address: UInt64, in file: HDF5File, object: String) throws {
        guard let checks = file.attributeChecks else { return }
        try checks.once(address) { try checkMessages(at: address, file: file, object: object) }
    }
}

extension HDF5Group {
    /// Checks the header of the object the hard link `name` points at, before libhdf5 opens it.
    func checkHeader(of name: String) throws {
        guard file.attributeChecks != nil else { return }
        var address: haddr_t = 0
        switch irm_hard_link_address(id, name, &address) {
        case 1: try HDF5ObjectHeader.check(at: UInt64(address), in: file, object: childPath(name))
        case 0: return  // refused elsewhere (requireHardLink)
        default:
            throw HDF5Error(file: file.path, object: childPath(name), message: "cannot read the link", libraryDetail: HDF5Library.takeErrorDetail())
        }
    }
}

/// The objects of one file whose attribute messages have been checked, and the error of any that
/// failed (so that each object is read once, whatever asks).
final class HDF5AttributeCheckCache: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [UInt64: HDF5Error?] = [:]

    func once(_ address: UInt64, _ check: () throws -> Void) throws {
        lock.lock()
        let known = results[address]
        lock.unlock()
        if let known {
            if let error = known { throw error }
            return
        }
        var failure: HDF5Error?
        do { try check() } catch let error as HDF5Error { failure = error }
        lock.lock()
        results[address] = .some(failure)
        lock.unlock()
        if let failure { throw failure }
    }
}
