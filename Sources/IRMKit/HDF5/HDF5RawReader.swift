import Foundation

/// Bytes of an HDF5 file read by irm itself, for the structures it checks before libhdf5 trusts
/// them (HDF5GlobalHeap.swift, HDF5ObjectHeader.swift). Every read is bounded by the file's size.
struct HDF5RawReader {
    let path: String
    let object: String?
    let fileSize: UInt64
    private let handle: FileHandle

    init(file: HDF5File, object: String?) throws {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw HDF5Error(file: file.path, object: object, message: "cannot open the file to check its structure")
        }
        self.path = file.path
        self.object = object
        self.handle = handle
        self.fileSize = UInt64(file.sizeOnDisk)
    }

    /// `count` bytes at `offset`; an error naming `what` when they are not all in the file.
    func bytes(at offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        guard count >= 0, offset <= fileSize, UInt64(count) <= fileSize - offset else {
            throw HDF5Error(file: path, object: object, message: "\(what) at byte \(offset) runs past the end of the \(fileSize)-byte file; the file is truncated or corrupt")
        }
        do {
            try handle.seek(toOffset: offset)
            let data = try handle.read(upToCount: count) ?? Data()
            guard data.count == count else {
                throw HDF5Error(file: path, object: object, message: "the file ends inside \(what) (at byte \(offset))")
            }
            return [UInt8](data)
        } catch let error as HDF5Error {
            throw error
        } catch {
            throw HDF5Error(file: path, object: object, message: "cannot read \(what): \(error.localizedDescription)")
        }
    }

    /// An unsigned little-endian integer of up to 8 bytes (HDF5 stores all metadata that way).
    static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in bytes.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    static func align8(_ value: Int) -> Int { (value + 7) / 8 * 8 }
}
