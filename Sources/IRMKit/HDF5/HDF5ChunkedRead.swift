import CHDF5
import CZlib
import Foundation

/// Chunked datasets, decoded by irm rather than by libhdf5.
///
/// libhdf5 1.10 trusts a chunked dataset's layout message: when a chunk inflates to fewer bytes than
/// the chunk size the file declares, `H5Dread` copies past the inflated buffer (a one-byte change in
/// an h5py file segfaults it: Tests/Fixtures/fuzz/). irm therefore reads each chunk's stored bytes
/// with `H5Dread_chunk`, undoes the filters itself (`HDF5ChunkFilter`) with every size checked, and
/// places the chunk's values where they belong. A chunk that was never written is an error here,
/// where libhdf5 would silently return fill values.
enum HDF5ChunkFilter: Equatable, Sendable {
    case deflate
    case shuffle(elementSize: Int)
    case fletcher32

    /// Filter ids libhdf5 builds in that irm does not decode (a file using them is refused).
    static let undecoded: [Int32: String] = [4: "szip", 5: "nbit", 6: "scaleoffset"]

    var name: String {
        switch self {
        case .deflate: "deflate"
        case .shuffle: "shuffle"
        case .fletcher32: "fletcher32"
        }
    }

    /// The filter for HDF5 filter id `id` with client data `values`, or nil for one irm does not decode.
    init?(id: Int32, values: [UInt32]) {
        switch id {
        case 1: self = .deflate
        case 2: self = .shuffle(elementSize: Int(values.first ?? 1))
        case 3: self = .fletcher32
        default: return nil
        }
    }
}

/// A chunked dataset's chunk shape and filter pipeline (in the order the writer applied them).
struct HDF5ChunkLayout {
    var chunk: [Int]
    var filters: [HDF5ChunkFilter]

    /// The most values irm accepts in one chunk when the chunk is larger than the whole dataset
    /// (h5py never makes such chunks for fixed-size datasets; a damaged layout message does).
    static let largestOversizedChunk = 1 << 20
}

extension HDF5Dataset {
    /// The chunk shape and filters, checked against the dataset's shape. Errors name the dataset.
    func chunkLayout() throws -> HDF5ChunkLayout {
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's storage properties", libraryDetail: HDF5Library.takeErrorDetail())
        }
        defer { _ = H5Pclose(dcpl) }
        let rank = info.shape.count
        var dims = [hsize_t](repeating: 0, count: max(1, rank))
        guard rank > 0, H5Pget_chunk(dcpl, Int32(rank), &dims) == Int32(rank) else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's chunk shape", libraryDetail: HDF5Library.takeErrorDetail())
        }
        var chunk: [Int] = []
        var elements = 1
        for dim in dims {
            guard let extent = Int(exactly: dim), extent > 0 else {
                throw HDF5Error(file: file.path, object: path, message: "declares chunk shape \(dims); the file is corrupt")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw HDF5Error(file: file.path, object: path, message: "declares chunk shape \(dims); the file is corrupt") }
            chunk.append(extent)
            elements = product
        }
        let width = info.elementType.byteWidth ?? 1
        let (chunkBytes, overflow) = elements.multipliedReportingOverflow(by: width)
        guard !overflow, chunkBytes < 1 << 32 else {
            throw HDF5Error(file: file.path, object: path, message: "declares chunk shape \(chunk), over the 4 GiB HDF5 allows in one chunk; the file is corrupt")
        }
        if zip(chunk, info.shape).contains(where: { $0 > $1 }), elements > max(info.elementCount, HDF5ChunkLayout.largestOversizedChunk) {
            throw HDF5Error(file: file.path, object: path,
                            message: "declares chunk shape \(chunk) for a dataset of shape \(info.shape); the file is corrupt")
        }
        var filters: [HDF5ChunkFilter] = []
        let count = H5Pget_nfilters(dcpl)
        guard count >= 0, count <= 32 else {
            throw HDF5Error(file: file.path, object: path, message: "cannot read the dataset's filters", libraryDetail: HDF5Library.takeErrorDetail())
        }
        for index in 0..<UInt32(count) {
            var flags: UInt32 = 0
            var valueCount = 8
            var values = [UInt32](repeating: 0, count: valueCount)
            var name = [CChar](repeating: 0, count: 256)
            var config: UInt32 = 0
            let id = H5Pget_filter2(dcpl, index, &flags, &valueCount, &values, name.count, &name, &config)
            if let filter = HDF5ChunkFilter(id: id, values: Array(values.prefix(min(valueCount, values.count)))) {
                filters.append(filter)
            } else if let builtIn = HDF5ChunkFilter.undecoded[id] {
                throw HDF5Error(file: file.path, object: path,
                                message: "compressed with \(builtIn), which irm does not decode (it decodes deflate, shuffle and fletcher32 itself, checking every chunk); rewrite the file with compression=\"gzip\" or none, or convert the original safetensors with `irm convert`")
            } else {
                let label = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw HDF5Error(file: file.path, object: path,
                                message: "compressed with filter \(id)\(label.isEmpty ? "" : " (\"\(label)\")"), which is not built into libhdf5; irm loads no filter plugins — rewrite the file without it (h5py: compression=\"gzip\" or none)")
            }
        }
        return HDF5ChunkLayout(chunk: chunk, filters: filters)
    }

    /// Reads every value of a chunked dataset into `buffer` (the dataset's elements in row-major
    /// order, `width` bytes each, as the file stores them), decoding each chunk in irm.
    func readChunks(into buffer: UnsafeMutableRawBufferPointer, width: Int) throws {
        let layout = try chunkLayout()
        let shape = info.shape
        let rank = shape.count
        guard buffer.count == info.elementCount * width, !shape.contains(0) else { return }
        let chunk = layout.chunk
        let chunkBytes = chunk.reduce(width, *)
        let grid = zip(shape, chunk).map { ($0 + $1 - 1) / $1 }
        let fileSize = UInt64(file.sizeOnDisk)
        var position = [Int](repeating: 0, count: rank)  // the chunk's index in the grid
        var stored: [UInt8] = []
        var decoded = [UInt8](repeating: 0, count: chunkBytes)
        while true {
            var offset = zip(position, chunk).map { hsize_t($0 * $1) }
            let name = "the chunk at \(offset)"
            var mask: UInt32 = 0
            var address: haddr_t = 0
            var size: hsize_t = 0
            guard H5Dget_chunk_info_by_coord(id, &offset, &mask, &address, &size) >= 0 else {
                throw HDF5Error(file: file.path, object: path, message: "cannot find \(name); the file may be corrupt",
                                libraryDetail: HDF5Library.takeErrorDetail())
            }
            guard address != irm_HADDR_UNDEF() else {
                throw HDF5Error(file: file.path, object: path,
                                message: "\(name) was never written (libhdf5 would fill it with a default value); the file is incomplete")
            }
            guard size <= fileSize, address <= fileSize - size, size > 0 else {
                throw HDF5Error(file: file.path, object: path,
                                message: "\(name) declares \(size) bytes at byte \(address), outside the \(fileSize)-byte file; the file is corrupt")
            }
            if stored.count != Int(size) { stored = [UInt8](repeating: 0, count: Int(size)) }
            var skipped: UInt32 = 0
            let status = stored.withUnsafeMutableBytes { H5Dread_chunk(id, irm_H5P_DEFAULT(), &offset, &skipped, $0.baseAddress) }
            guard status >= 0 else {
                throw HDF5Error(file: file.path, object: path, message: "cannot read \(name); the file may be truncated or corrupt",
                                libraryDetail: HDF5Library.takeErrorDetail())
            }
            try decode(stored, skipping: skipped, filters: layout.filters, into: &decoded, what: name)
            place(decoded, chunkAt: position, chunk: chunk, shape: shape, width: width, into: buffer)

            // The next chunk in row-major order of the grid.
            var dimension = rank - 1
            while dimension >= 0 {
                position[dimension] += 1
                if position[dimension] < grid[dimension] { break }
                position[dimension] = 0
                dimension -= 1
            }
            if dimension < 0 { break }
        }
    }

    /// Undoes `filters` in reverse order (those whose bit is set in `skipping` were not applied to
    /// this chunk) and checks that the result is exactly one chunk.
    private func decode(_ stored: [UInt8], skipping: UInt32, filters: [HDF5ChunkFilter], into decoded: inout [UInt8], what: String) throws {
        let expected = decoded.count
        func corrupt(_ message: String) -> HDF5Error {
            HDF5Error(file: file.path, object: path, message: "\(what): \(message); the file is corrupt")
        }
        var data = stored
        for (index, filter) in filters.enumerated().reversed() where skipping & (1 << UInt32(index)) == 0 {
            switch filter {
            case .fletcher32:
                guard data.count >= 4 else { throw corrupt("\(data.count) bytes, too few to hold its fletcher32 checksum") }
                let body = data.count - 4
                let storedSum = data[body..<data.count].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                let sum = data.withUnsafeBytes { Fletcher32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
                // libhdf5 before 1.6.3 stored the checksum with each 16-bit half byte-swapped; it
                // accepts both, and so does irm.
                let swapped = ((sum & 0x00ff_00ff) << 8) | ((sum >> 8) & 0x00ff_00ff)
                guard storedSum == sum || storedSum == swapped else {
                    throw corrupt("its fletcher32 checksum does not match its bytes")
                }
                data.removeLast(4)
            case .deflate:
                // The only filters that may follow deflate on write add at most a 4-byte checksum.
                data = try inflate(data, limit: expected + 4 * filters.count, corrupt: corrupt)
            case .shuffle(let elementSize):
                data = unshuffle(data, elementSize: elementSize)
            }
        }
        guard data.count == expected else {
            throw corrupt("decodes to \(data.count) bytes where its chunk shape holds \(expected)")
        }
        decoded = data
    }

    /// Copies the part of a decoded chunk that lies inside the dataset to its place in `buffer`.
    private func place(_ decoded: [UInt8], chunkAt position: [Int], chunk: [Int], shape: [Int], width: Int,
                       into buffer: UnsafeMutableRawBufferPointer) {
        let rank = shape.count
        let origin = zip(position, chunk).map { $0 * $1 }
        let extent = (0..<rank).map { min(chunk[$0], shape[$0] - origin[$0]) }
        // Row-major strides, in elements, of the chunk and of the dataset.
        var chunkStride = [Int](repeating: 1, count: rank)
        var shapeStride = [Int](repeating: 1, count: rank)
        for dimension in stride(from: rank - 2, through: 0, by: -1) {
            chunkStride[dimension] = chunkStride[dimension + 1] * chunk[dimension + 1]
            shapeStride[dimension] = shapeStride[dimension + 1] * shape[dimension + 1]
        }
        let rowBytes = extent[rank - 1] * width
        var index = [Int](repeating: 0, count: rank)  // within the chunk, the last dimension kept 0
        decoded.withUnsafeBytes { source in
            while true {
                var from = 0
                var to = 0
                for dimension in 0..<rank {
                    from += index[dimension] * chunkStride[dimension]
                    to += (origin[dimension] + index[dimension]) * shapeStride[dimension]
                }
                (buffer.baseAddress! + to * width).copyMemory(from: source.baseAddress! + from * width, byteCount: rowBytes)
                var dimension = rank - 2
                while dimension >= 0 {
                    index[dimension] += 1
                    if index[dimension] < extent[dimension] { break }
                    index[dimension] = 0
                    dimension -= 1
                }
                if dimension < 0 { break }
            }
        }
    }

    /// zlib-inflates `data`, refusing output beyond `limit` bytes and any stream that does not end.
    private func inflate(_ data: [UInt8], limit: Int, corrupt: (String) -> HDF5Error) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: limit)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw HDF5Error(file: file.path, object: path, message: "cannot start zlib to inflate a chunk")
        }
        defer { inflateEnd(&stream) }
        var input = data
        let (status, produced) = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = uInt(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = uInt(outputBuffer.count)
                let status = CZlib.inflate(&stream, Z_FINISH)
                return (status, outputBuffer.count - Int(stream.avail_out))
            }
        }
        guard status == Z_STREAM_END else {
            if status == Z_BUF_ERROR && stream.avail_out == 0 {
                throw corrupt("it inflates to more than the \(limit) bytes its chunk shape allows")
            }
            throw corrupt("its deflate stream is damaged (zlib status \(status))")
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// Undoes HDF5's shuffle filter: byte `b` of element `i` was stored at `b * count + i`; bytes
    /// after the last whole element were left in place.
    private func unshuffle(_ data: [UInt8], elementSize: Int) -> [UInt8] {
        let count = elementSize > 0 ? data.count / elementSize : 0
        guard elementSize > 1, count > 1 else { return data }
        var output = data
        data.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                for byte in 0..<elementSize {
                    let plane = byte * count
                    for element in 0..<count { target[element * elementSize + byte] = source[plane + element] }
                }
            }
        }
        return output
    }
}

/// The Fletcher-32 checksum as HDF5 computes it (H5checksum.c, "Note #3"): 16-bit words taken
/// big-endian, both sums starting at 0, reduced every 360 words; an odd last byte counts as the
/// high byte of a word.
enum Fletcher32 {
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var sum1: UInt32 = 0
        var sum2: UInt32 = 0
        let words = bytes.count / 2
        var word = 0
        while word < words {
            let end = min(words, word + 360)
            while word < end {
                sum1 &+= UInt32(bytes[2 * word]) << 8 | UInt32(bytes[2 * word + 1])
                sum2 &+= sum1
                word += 1
            }
            sum1 = (sum1 & 0xffff) + (sum1 >> 16)
            sum2 = (sum2 & 0xffff) + (sum2 >> 16)
        }
        if bytes.count % 2 == 1 {
            sum1 &+= UInt32(bytes[bytes.count - 1]) << 8
            sum2 &+= sum1
            sum1 = (sum1 & 0xffff) + (sum1 >> 16)
            sum2 = (sum2 & 0xffff) + (sum2 >> 16)
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16)
        sum2 = (sum2 & 0xffff) + (sum2 >> 16)
        return sum2 << 16 | sum1
    }
}
