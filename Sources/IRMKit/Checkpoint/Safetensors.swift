import Foundation

/// A safetensors file, memory-mapped, with its header fully checked before any tensor is touched.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name
/// to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end of the header),
/// optionally a `__metadata__` object of strings, then the data.
public struct SafetensorsFile: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// The safetensors dtype string (`F32`, `F16`, `BF16`, `I64`, ...).
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// Refuse headers larger than this, as the reference library does (100 MB).
    public static let maximumHeaderLength = 100_000_000

    /// Element widths of the dtypes safetensors defines, so that byte ranges can be checked even for
    /// tensors irm will not import.
    static let dtypeWidths: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
        "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let data: Data
        try InputFile.requireRegular(path, what: "a safetensors file")
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw IRMError("\(path): cannot read the safetensors file (\(error.localizedDescription))")
        }
        self.data = data
        guard data.count >= 8 else {
            throw IRMError("\(path): expected a safetensors file of at least 8 bytes, found \(data.count) bytes")
        }
        let headerLength = data.withUnsafeBytes { raw -> UInt64 in
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return value
        }
        guard headerLength <= UInt64(Self.maximumHeaderLength) else {
            throw IRMError("\(path): the safetensors header claims \(headerLength) bytes; expected at most \(Self.maximumHeaderLength) (the file is not safetensors, or is corrupt)")
        }
        guard Int(headerLength) + 8 <= data.count else {
            throw IRMError("\(path): the safetensors header claims \(headerLength) bytes but the file has only \(data.count - 8) after the length field (truncated file?)")
        }
        dataStart = 8 + Int(headerLength)
        let header = try JSONValue.parse(data.subdata(in: 8..<dataStart), source: "\(path) (safetensors header)")
        guard let object = header.objectValue else {
            throw IRMError("\(path): the safetensors header should be a JSON object, found \(header.brief)")
        }
        let dataLength = data.count - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                for (key, item) in value.objectValue ?? [:] { metadata[key] = item.stringValue ?? item.brief }
                continue
            }
            let context = "\(path): tensor \(name)"
            guard let dtype = value["dtype"]?.stringValue else { throw IRMError("\(context): the header entry has no \"dtype\" string") }
            guard let shapeValues = value["shape"]?.arrayValue else { throw IRMError("\(context): the header entry has no \"shape\" array") }
            var shape: [Int] = []
            for dim in shapeValues {
                guard let d = dim.intValue, d >= 0 else { throw IRMError("\(context): shape entries must be non-negative integers, found \(dim.brief)") }
                shape.append(d)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue else {
                throw IRMError("\(context): expected \"data_offsets\": [begin, end]")
            }
            guard begin >= 0, begin <= end else { throw IRMError("\(context): data_offsets [\(begin), \(end)] are not an increasing pair") }
            guard end <= dataLength else {
                throw IRMError("\(context): data_offsets [\(begin), \(end)] run past the end of the data section (\(dataLength) bytes; truncated file?)")
            }
            if let width = Self.dtypeWidths[dtype] {
                let (count, overflow) = shape.reduce((1, false)) { acc, d in
                    let r = acc.0.multipliedReportingOverflow(by: d)
                    return (r.partialValue, acc.1 || r.overflow)
                }
                guard !overflow, count.multipliedReportingOverflow(by: width).partialValue == end - begin else {
                    throw IRMError("\(context): shape \(shape) of \(dtype) needs \(overflow ? "an impossible number of" : String(count * width)) bytes, but data_offsets give \(end - begin)")
                }
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: begin..<end)
        }
        let sorted = entries.values.sorted { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.range.lowerBound < previous.range.upperBound {
            throw IRMError("\(path): the data of tensors \(previous.name) [\(previous.range.lowerBound), \(previous.range.upperBound)) and \(next.name) [\(next.range.lowerBound), \(next.range.upperBound)) overlap; the header is corrupt")
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Calls `body` with the tensor's raw bytes, valid only during the call.
    public func withBytes<R>(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)]))
        }
    }

    /// The tensor's values widened to float32. Supports F32, F16 and BF16.
    public func floatValues(of entry: Entry) throws -> [Float] {
        let count = entry.elementCount
        return try withBytes(of: entry) { raw in
            switch entry.dtype {
            case "F32":
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                    for i in 0..<count { buffer[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                    initialised = count
                }
            case "F16":
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                    for i in 0..<count { buffer[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
                    initialised = count
                }
            case "BF16":
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                    for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
                    initialised = count
                }
            default:
                throw IRMError("\(path): tensor \(entry.name) has dtype \(entry.dtype); irm imports F32, F16 and BF16")
            }
        }
    }
}
