import Foundation

/// Writes an irm checkpoint (format v1.1: every tensor with its `crc32`, in HDF5's checksummed 1.8
/// format, strings fixed-length). The file appears at its destination only when `finish()`
/// succeeds: until then it is a hidden temporary file beside it (`AtomicOutput.PendingFile`), which
/// `cancel()`, an error in `finish()`, or SIGINT, SIGTERM or SIGHUP removes.
///
/// Tensors are written one at a time, so converting a large model holds one tensor in memory.
public final class CheckpointWriter {
    public let destination: URL
    private let temporary: URL
    private let pending: AtomicOutput.PendingFile
    private var file: HDF5File?
    private var tensorGroup: HDF5Group?
    private var written: Set<String> = []

    public init(destination: URL, architecture: Architecture, kind: CheckpointKind, configJSON: String,
                tokenizerJSON: String, tokenizerConfigJSON: String?, chatTemplate: String? = nil, provenance: Provenance) throws {
        if let beta = provenance.beta, !Provenance.isValidBeta(beta) {
            throw IRMError("\(destination.path): /provenance: attribute \"beta\" would be \(beta); expected \(Provenance.betaRule)")
        }
        pending = try AtomicOutput.PendingFile(destination: destination)
        self.destination = destination
        self.temporary = pending.temporary
        do {
            let file = try HDF5File.create(temporary.path)
            self.file = file
            let root = try file.root()
            try root.setAttribute(CheckpointFormat.formatAttribute, .string(CheckpointFormat.name))
            try root.setAttribute(CheckpointFormat.versionAttribute, .int(CheckpointFormat.version))
            try root.setAttribute(CheckpointFormat.minorVersionAttribute, .int(CheckpointFormat.minorVersion))
            try root.setAttribute(CheckpointFormat.architectureAttribute, .string(architecture.rawValue))
            try root.setAttribute(CheckpointFormat.kindAttribute, .string(kind.rawValue))
            try Self.writeText(CheckpointFormat.configDataset, value: configJSON, in: root)
            let tokenizer = try root.createGroup(CheckpointFormat.tokenizerGroup)
            try Self.writeText(CheckpointFormat.tokenizerJSONDataset, value: tokenizerJSON, in: tokenizer)
            if let chatTemplate {
                try Self.writeText(CheckpointFormat.chatTemplateDataset, value: chatTemplate, in: tokenizer)
            }
            if let tokenizerConfigJSON {
                try Self.writeText(CheckpointFormat.tokenizerConfigDataset, value: tokenizerConfigJSON, in: tokenizer)
            }
            if !provenance.isEmpty {
                let group = try root.createGroup(CheckpointFormat.provenanceGroup)
                if let v = provenance.sourceModel { try group.setAttribute(Provenance.sourceModelAttribute, .string(v)) }
                if let v = provenance.trainingStep { try group.setAttribute(Provenance.trainingStepAttribute, .int(Int64(v))) }
                if let v = provenance.beta { try group.setAttribute(Provenance.betaAttribute, .double(v)) }
                if let v = provenance.notes { try group.setAttribute(Provenance.notesAttribute, .string(v)) }
                if let v = provenance.writtenBy { try group.setAttribute(Provenance.writtenByAttribute, .string(v)) }
                if let v = provenance.adapterSource { try group.setAttribute(Provenance.adapterSourceAttribute, .string(v)) }
                if let v = provenance.adapterConfig { try group.setAttribute(Provenance.adapterConfigAttribute, .string(v)) }
            }
            tensorGroup = try root.createGroup(CheckpointFormat.tensorsGroup)
        } catch {
            cancel()
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
    }

    deinit { cancel() }

    /// Adds a tensor stored as `dtype`, converting from float32 (rounding to nearest even).
    /// float16 conversion fails, rather than writing infinities, when a value exceeds ±65504.
    public func addTensor(name: String, shape: [Int], values: [Float], dtype: TensorDType) throws {
        guard let tensorGroup else { throw IRMError("\(destination.path): the writer is already finished") }
        guard !written.contains(name) else { throw IRMError("\(destination.path): tensor \(name) written twice") }
        do {
            switch dtype {
            case .f32, .f64:
                try write(name, values: values, shape: shape, in: tensorGroup)
            case .f16:
                var half = [Float16](repeating: 0, count: values.count)
                var worst: Float = 0
                for index in values.indices {
                    let value = values[index]
                    half[index] = Float16(value)
                    if value.isFinite, !half[index].isFinite { worst = max(worst, abs(value)) }
                }
                if worst > 0 {
                    throw IRMError("\(destination.path): tensor \(name) holds values up to \(worst), beyond float16's range (±65504); use --dtype bf16 or f32")
                }
                try write(name, values: half, shape: shape, in: tensorGroup)
            case .bf16:
                try write(name, values: values.map(BFloat16.init), shape: shape, in: tensorGroup)
            }
        } catch {
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
        written.insert(name)
    }

    /// Adds a tensor from raw little-endian bytes already in `dtype` (no conversion).
    public func addTensor(name: String, shape: [Int], rawBytes: UnsafeRawBufferPointer, dtype: TensorDType) throws {
        guard let tensorGroup else { throw IRMError("\(destination.path): the writer is already finished") }
        guard !written.contains(name) else { throw IRMError("\(destination.path): tensor \(name) written twice") }
        do {
            try tensorGroup.createDataset(name, rawBytes: rawBytes, elementType: dtype.elementType, shape: shape)
            try tensorGroup.dataset(name).setAttribute(CheckpointFormat.checksumAttribute, uint32: CRC32.checksum(rawBytes))
        } catch {
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
        written.insert(name)
    }

    /// Writes a string dataset and its `crc32`, the CRC-32 of the UTF-8 bytes stored (which end at
    /// the first NUL, as `HDF5Group.createStringDataset` stores them).
    private static func writeText(_ name: String, value: String, in group: HDF5Group) throws {
        try group.createStringDataset(name, value: value)
        let crc = CRC32.checksum(Array(value.utf8.prefix { $0 != 0 }))
        try group.dataset(name).setAttribute(CheckpointFormat.checksumAttribute, uint32: crc)
    }

    /// Writes one tensor dataset and its `crc32`, computed over the bytes handed to libhdf5.
    private func write<T: HDF5Numeric>(_ name: String, values: [T], shape: [Int], in group: HDF5Group) throws {
        try group.createDataset(name, values: values, shape: shape)
        let crc = values.withUnsafeBytes { CRC32.checksum($0) }
        try group.dataset(name).setAttribute(CheckpointFormat.checksumAttribute, uint32: crc)
    }

    /// Closes the file and moves it into place.
    public func finish() throws {
        guard file != nil else { throw IRMError("\(destination.path): the writer is already finished") }
        do {
            try file?.flush()
        } catch {
            cancel()
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
        // The last references go, so libhdf5 closes the file here, before it is published: closing
        // writes the superblock again (its "open for writing" flag cleared). No local may hold the
        // file past this point, or that write would land after the rename, on the published file.
        tensorGroup = nil
        file = nil
        try pending.publish()
    }

    /// Abandons the file and removes the temporary.
    public func cancel() {
        tensorGroup = nil
        file = nil
        pending.abandon()
    }

    /// Messages should name the destination the user asked for, not our hidden temporary.
    private static func rewrite(_ error: Error, temporary: URL, destination: URL) -> Error {
        if let hdf5 = error as? HDF5Error {
            return HDF5Error(file: destination.path, object: hdf5.object, message: hdf5.message, libraryDetail: hdf5.libraryDetail)
        }
        return error
    }
}
