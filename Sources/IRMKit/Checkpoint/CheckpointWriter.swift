import Foundation

/// Writes an irm checkpoint (format v1). The file appears at its destination only when `finish()`
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
            try root.setAttribute(CheckpointFormat.architectureAttribute, .string(architecture.rawValue))
            try root.setAttribute(CheckpointFormat.kindAttribute, .string(kind.rawValue))
            try root.createStringDataset(CheckpointFormat.configDataset, value: configJSON)
            let tokenizer = try root.createGroup(CheckpointFormat.tokenizerGroup)
            try tokenizer.createStringDataset(CheckpointFormat.tokenizerJSONDataset, value: tokenizerJSON)
            if let chatTemplate {
                try tokenizer.createStringDataset(CheckpointFormat.chatTemplateDataset, value: chatTemplate)
            }
            if let tokenizerConfigJSON {
                try tokenizer.createStringDataset(CheckpointFormat.tokenizerConfigDataset, value: tokenizerConfigJSON)
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
                try tensorGroup.createDataset(name, values: values, shape: shape)
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
                try tensorGroup.createDataset(name, values: half, shape: shape)
            case .bf16:
                try tensorGroup.createDataset(name, values: values.map(BFloat16.init), shape: shape)
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
        } catch {
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
        written.insert(name)
    }

    /// Closes the file and moves it into place.
    public func finish() throws {
        guard let file else { throw IRMError("\(destination.path): the writer is already finished") }
        do {
            try file.flush()
        } catch {
            cancel()
            throw Self.rewrite(error, temporary: temporary, destination: destination)
        }
        tensorGroup = nil
        self.file = nil  // the last references go, so libhdf5 closes the file
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
