import Foundation

/// An irm checkpoint (format v1, any minor version) opened for reading. Opening reads the metadata
/// and the tensor directory only; tensor values are read on request, each checked against its
/// stored CRC-32 where the file has one.
///
/// libhdf5 serialises all calls behind a global lock, so load every tensor a model needs up front
/// (`loadAllTensors`) rather than from a hot loop.
public final class Checkpoint {
    public let path: String
    public let formatVersion: Int
    /// `irm_format_minor`: 0 when absent (files written before it existed, and by hand).
    public let formatMinorVersion: Int
    public let architecture: Architecture
    public let kind: CheckpointKind
    public let config: ModelConfig
    /// The tokenizer.json text, embedded whole.
    public let tokenizerJSON: String
    /// The tokenizer_config.json text, when the exporter stored one.
    public let tokenizerConfigJSON: String?
    /// The chat_template.jinja text, when the exporter stored one (transformers 5 keeps the template
    /// there instead of in tokenizer_config.json).
    public let chatTemplate: String?
    public let provenance: Provenance
    /// Every tensor in the file, sorted by name.
    public let tensors: [TensorInfo]
    /// How each tensor is stored in the file (contiguous ones can be mapped in place).
    public let tensorStorage: [String: HDF5Storage]
    /// The `crc32` attribute of each tensor that has one (every tensor of a file irm wrote in format
    /// 1.1 or later), which every read of its values is checked against. (The string datasets'
    /// are checked when the file is opened.)
    public let tensorChecksums: [String: UInt32]

    private let file: HDF5File
    private let tensorGroup: HDF5Group
    /// The file mapped read-only, made on the first request for a mapped tensor.
    private var mapping: MappedFile?
    private let mappingLock = NSLock()

    private init(path: String, formatVersion: Int, formatMinorVersion: Int, architecture: Architecture, kind: CheckpointKind, config: ModelConfig,
                 tokenizerJSON: String, tokenizerConfigJSON: String?, chatTemplate: String?, provenance: Provenance, tensors: [TensorInfo],
                 tensorStorage: [String: HDF5Storage], tensorChecksums: [String: UInt32], file: HDF5File, tensorGroup: HDF5Group) {
        self.path = path
        self.formatVersion = formatVersion
        self.formatMinorVersion = formatMinorVersion
        self.architecture = architecture
        self.kind = kind
        self.config = config
        self.tokenizerJSON = tokenizerJSON
        self.tokenizerConfigJSON = tokenizerConfigJSON
        self.chatTemplate = chatTemplate
        self.provenance = provenance
        self.tensors = tensors
        self.tensorStorage = tensorStorage
        self.tensorChecksums = tensorChecksums
        self.file = file
        self.tensorGroup = tensorGroup
    }

    /// Opens and checks the metadata of a checkpoint. Errors name the file and the object inside it.
    public static func open(path: String) throws -> Checkpoint {
        let file = try HDF5File.open(path)
        let root = try file.root()
        func fail(_ object: String?, _ message: String) -> IRMError {
            IRMError("\(path)\(object.map { ": \($0)" } ?? ""): \(message)")
        }

        guard let format = try root.attribute(CheckpointFormat.formatAttribute)?.stringValue else {
            throw fail("/", "not an irm checkpoint: the root attribute \"\(CheckpointFormat.formatAttribute)\" is missing "
                        + "(expected \"\(CheckpointFormat.name)\"); convert Hugging Face models with `irm convert`")
        }
        guard format == CheckpointFormat.name else {
            throw fail("/", "expected \(CheckpointFormat.formatAttribute) = \"\(CheckpointFormat.name)\", found \"\(format)\"")
        }
        guard let version = try root.attribute(CheckpointFormat.versionAttribute)?.intValue else {
            throw fail("/", "the root attribute \"\(CheckpointFormat.versionAttribute)\" is missing or not an integer")
        }
        guard version == CheckpointFormat.version else {
            throw fail("/", "unknown format version \(version); this irm (\(IRMVersion.string)) reads version \(CheckpointFormat.version)")
        }
        // A later minor version only adds what this reader may ignore.
        var minorVersion: Int64 = 0
        if let minor = try root.attribute(CheckpointFormat.minorVersionAttribute) {
            guard let value = minor.intValue, value >= 0 else {
                throw fail("/", "the root attribute \"\(CheckpointFormat.minorVersionAttribute)\" is \(minor); expected an integer 0 or more")
            }
            minorVersion = value
        }
        guard let architectureName = try root.attribute(CheckpointFormat.architectureAttribute)?.stringValue else {
            throw fail("/", "the root attribute \"architecture\" is missing; expected one of \(Architecture.supportedList)")
        }
        guard let architecture = Architecture(rawValue: architectureName) else {
            throw fail("/", "unsupported architecture \"\(architectureName)\"; expected one of \(Architecture.supportedList)")
        }
        guard let kindName = try root.attribute(CheckpointFormat.kindAttribute)?.stringValue else {
            throw fail("/", "the root attribute \"kind\" is missing; expected \"policy\" or \"reward-model\"")
        }
        guard let kind = CheckpointKind(rawValue: kindName) else {
            throw fail("/", "unknown kind \"\(kindName)\"; expected \"policy\" or \"reward-model\"")
        }

        let tensorGroup = try root.group(CheckpointFormat.tensorsGroup)
        let tensorNames = try tensorGroup.childNames()
        let configText = try text(CheckpointFormat.configDataset, in: root, path: path)
        let config = try ModelConfig(json: try JSONValue.parse(configText, source: "\(path): /config"), source: "\(path): /config",
                                     tensorCount: tensorNames.count)
        guard config.architecture == architecture else {
            throw fail("/config", "model_type \"\(config.architecture.rawValue)\" disagrees with the root attribute architecture = \"\(architecture.rawValue)\"")
        }

        let tokenizerGroup = try root.group(CheckpointFormat.tokenizerGroup)
        let tokenizerJSON = try text(CheckpointFormat.tokenizerJSONDataset, in: tokenizerGroup, path: path)
        let tokenizerConfigJSON = tokenizerGroup.contains(CheckpointFormat.tokenizerConfigDataset)
            ? try text(CheckpointFormat.tokenizerConfigDataset, in: tokenizerGroup, path: path) : nil
        let chatTemplate = tokenizerGroup.contains(CheckpointFormat.chatTemplateDataset)
            ? try text(CheckpointFormat.chatTemplateDataset, in: tokenizerGroup, path: path) : nil

        var provenance = Provenance()
        if root.contains(CheckpointFormat.provenanceGroup) {
            let group = try root.group(CheckpointFormat.provenanceGroup)
            // An attribute of another type is an error, not an absence: a β stored as a string
            // would otherwise leave the analysis at β = 1.
            func attribute<T>(_ name: String, expected: String, _ typed: (HDF5AttributeValue) -> T?) throws -> T? {
                guard let value = try group.attribute(name) else { return nil }
                guard let result = typed(value) else { throw fail("/provenance", "attribute \"\(name)\" is \(value); expected \(expected)") }
                return result
            }
            func text(_ name: String) throws -> String? { try attribute(name, expected: "a string") { $0.stringValue } }
            provenance.sourceModel = try text(Provenance.sourceModelAttribute)
            provenance.trainingStep = try attribute(Provenance.trainingStepAttribute, expected: "an integer") { $0.intValue.map { Int($0) } }
            provenance.beta = try attribute(Provenance.betaAttribute, expected: Provenance.betaRule) { $0.doubleValue.flatMap { Provenance.isValidBeta($0) ? $0 : nil } }
            provenance.notes = try text(Provenance.notesAttribute)
            provenance.writtenBy = try text(Provenance.writtenByAttribute)
            provenance.adapterSource = try text(Provenance.adapterSourceAttribute)
            provenance.adapterConfig = try text(Provenance.adapterConfigAttribute)
        }

        var tensors: [TensorInfo] = []
        var storage: [String: HDF5Storage] = [:]
        var checksums: [String: UInt32] = [:]
        let fileSize = file.sizeOnDisk
        for name in tensorNames {
            let dataset = try tensorGroup.dataset(name)
            guard let dtype = TensorDType(dataset.info.elementType) else {
                throw fail("/tensors/\(name)", "expected f32, f16 or bf16 (uint16 with attribute dtype = \"bfloat16\") values, found \(dataset.info.elementType)")
            }
            let layout = try dataset.storage()
            try checkStorage(layout, shape: dataset.info.shape, dtype: dtype, fileSize: fileSize) { fail("/tensors/\(name)", $0) }
            checksums[name] = try storedChecksum(of: dataset) { fail("/tensors/\(name)", $0) }
            tensors.append(TensorInfo(name: name, shape: dataset.info.shape, dtype: dtype))
            storage[name] = layout
        }
        return Checkpoint(path: path, formatVersion: Int(version), formatMinorVersion: Int(minorVersion), architecture: architecture, kind: kind,
                          config: config, tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON, chatTemplate: chatTemplate,
                          provenance: provenance, tensors: tensors, tensorStorage: storage, tensorChecksums: checksums, file: file, tensorGroup: tensorGroup)
    }

    /// deflate, the strongest built-in filter, shrinks data at most about 1032-fold.
    static let largestCompressionRatio = 1100

    /// Refuses values kept outside the file, and shapes that the file is too small to hold (before
    /// anything is allocated for them).
    private static func checkStorage(_ storage: HDF5Storage, shape: [Int], dtype: TensorDType, fileSize: Int,
                                     fail: (String) -> IRMError) throws {
        switch storage {
        case .external(let files):
            throw fail("keeps its values in other files (HDF5 external storage: \(files.joined(separator: ", "))); irm reads only what the checkpoint itself holds")
        case .virtual:
            throw fail("is a virtual dataset (its values come from other datasets or files); irm reads only what the checkpoint itself holds")
        default: break
        }
        var bytes = dtype.byteWidth
        for extent in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw fail("shape \(shape) is too large to hold") }
            bytes = product
        }
        switch storage {
        case .contiguous(let offset, let byteCount):
            guard byteCount == bytes, offset >= 0, offset <= fileSize, byteCount <= fileSize - offset else {
                throw fail("its \(bytes) bytes at offset \(offset) lie beyond the end of the \(fileSize)-byte file (truncated?)")
            }
        case .chunked(let filters) where !filters.isEmpty:
            guard bytes / largestCompressionRatio <= fileSize else {
                throw fail("shape \(shape) needs \(bytes) bytes, more than a \(fileSize)-byte file can hold even compressed")
            }
        default:
            guard bytes <= fileSize else {
                throw fail("shape \(shape) needs \(bytes) bytes, more than the whole \(fileSize)-byte file (truncated or corrupt)")
            }
        }
    }

    /// Total number of stored parameters (a tied head is counted once).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    /// The problems found when comparing the stored tensors with the architecture's expected set.
    public func tensorProblems() -> [TensorProblem] {
        let present = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
        return TensorLayout.validate(present: present, config: config, kind: kind)
    }

    /// Reads one tensor, widened to float32, after checking its stored bytes against its `crc32`.
    public func loadTensor(_ name: String) throws -> CheckpointTensor {
        let (tensor, mismatch) = try readTensor(name)
        if let mismatch { throw IRMError("\(path): \(mismatch)") }
        return tensor
    }

    /// `loadTensor`, returning a checksum mismatch instead of throwing it, so that `irm inspect` can
    /// list every damaged tensor.
    public func readTensor(_ name: String) throws -> (tensor: CheckpointTensor, checksumMismatch: ChecksumMismatch?) {
        guard tensors.contains(where: { $0.name == name }) else {
            throw IRMError("\(path): /tensors/\(name): missing tensor (the \(architecture.rawValue) \(kind.rawValue) needs it)")
        }
        var mismatch: ChecksumMismatch? = nil
        let array = try tensorGroup.dataset(name).readFloat32 { mismatch = self.checksumMismatch(name, storedBytes: $0) }
        return (CheckpointTensor(name: name, shape: array.shape, values: array.values), mismatch)
    }

    /// The tensor's stored `crc32` against zlib's CRC-32 of `storedBytes`; nil when they agree or
    /// the tensor has none. Costs one pass over the bytes (docs/checkpoint-format.md, "Checksums").
    func checksumMismatch(_ name: String, storedBytes: UnsafeRawBufferPointer) -> ChecksumMismatch? {
        ChecksumMismatch.check("/\(CheckpointFormat.tensorsGroup)/\(name)", stored: tensorChecksums[name], bytes: storedBytes)
    }

    /// A dataset's `crc32` attribute: nil when it has none, an error when it is not a uint32.
    private static func storedChecksum(of dataset: HDF5Dataset, fail: (String) -> IRMError) throws -> UInt32? {
        guard let crc = try dataset.attribute(CheckpointFormat.checksumAttribute) else { return nil }
        guard let value = crc.intValue, let checksum = UInt32(exactly: value) else {
            throw fail("attribute \"\(CheckpointFormat.checksumAttribute)\" is \(crc); expected an unsigned 32-bit integer (a CRC-32)")
        }
        return checksum
    }

    /// A string dataset's text, checked against its `crc32` (of the UTF-8 bytes) when it has one.
    private static func text(_ name: String, in group: HDF5Group, path: String) throws -> String {
        let dataset = try group.dataset(name)
        let object = dataset.path
        let value = try dataset.readString()
        let stored = try storedChecksum(of: dataset) { IRMError("\(path): \(object): \($0)") }
        let mismatch = Array(value.utf8).withUnsafeBytes { ChecksumMismatch.check(object, stored: stored, bytes: $0) }
        if let mismatch { throw IRMError("\(path): \(mismatch)") }
        return value
    }

    /// A tensor at its stored precision: in place in a read-only mapping of the file when it is
    /// stored contiguously (as `irm convert` writes it) and `allowMapping` is set, else read into
    /// memory. f64 values are rounded to float32. Either way its stored bytes are checked against
    /// its `crc32`.
    public func storedTensor(_ name: String, allowMapping: Bool = true) throws -> StoredTensor {
        guard let info = tensors.first(where: { $0.name == name }) else {
            throw IRMError("\(path): /tensors/\(name): missing tensor (the \(architecture.rawValue) \(kind.rawValue) needs it)")
        }
        if allowMapping, let element = StoredTensor.Element(info.dtype), case .contiguous(let offset, let byteCount)? = tensorStorage[name],
           let mapped = try mappedTensor(info, element: element, offset: offset, byteCount: byteCount) {
            return mapped
        }
        let tensor = try loadTensor(name)
        return StoredTensor(name: name, shape: tensor.shape, values: tensor.values)
    }

    /// The tensor in place in the mapping, after confirming that libhdf5 reads the same bytes at
    /// its first and last elements there; nil when it does not (then the caller reads it).
    private func mappedTensor(_ info: TensorInfo, element: StoredTensor.Element, offset: Int, byteCount: Int) throws -> StoredTensor? {
        let mapping = try mappedFile()
        let dataset = try tensorGroup.dataset(info.name)
        let (first, last) = try dataset.readEdgeBytes(count: 64)
        for start in Set([offset, offset + file.userBlockSize]) where mapping.contains(offset: start, count: byteCount) {
            let head = UnsafeRawBufferPointer(start: mapping.base + start, count: first.count)
            let tail = UnsafeRawBufferPointer(start: mapping.base + start + byteCount - last.count, count: last.count)
            if head.elementsEqual(first), tail.elementsEqual(last) {
                if let mismatch = checksumMismatch(info.name, storedBytes: UnsafeRawBufferPointer(start: mapping.base + start, count: byteCount)) {
                    throw IRMError("\(path): \(mismatch)")
                }
                return StoredTensor(name: info.name, shape: info.shape, element: element, mapping: mapping, byteOffset: start)
            }
        }
        return nil
    }

    private func mappedFile() throws -> MappedFile {
        mappingLock.lock()
        defer { mappingLock.unlock() }
        if let mapping { return mapping }
        let made = try MappedFile(path: path)
        mapping = made
        return made
    }

    /// One line on how the tensors are stored and how a model will use them, for `irm inspect`.
    public var storageSummary: String {
        let total = tensors.count
        let mappable = tensors.filter { tensorStorage[$0.name]?.isMappable == true && $0.dtype != .f64 }.count
        if mappable == total { return "all \(total) tensors contiguous: a model maps its matrices read-only and uses them at their stored precision" }
        var reasons: [String: Int] = [:]
        for info in tensors where !(tensorStorage[info.name]?.isMappable == true && info.dtype != .f64) {
            let reason = info.dtype == .f64 ? "float64" : tensorStorage[info.name]?.description ?? "unknown"
            reasons[reason, default: 0] += 1
        }
        let list = reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return "\(mappable) of \(total) tensors mapped in place; \(total - mappable) read into memory as float32 (\(list)): "
            + "convert the model with `irm convert` to map them"
    }

    /// Checks the tensor set, then reads every tensor. Fails on the first missing or misshaped one.
    public func loadAllTensors() throws -> [String: CheckpointTensor] {
        if let problem = tensorProblems().first(where: { $0.kind != .unexpected }) {
            throw IRMError("\(path): /tensors: \(problem)")
        }
        var result: [String: CheckpointTensor] = [:]
        for info in tensors { result[info.name] = try loadTensor(info.name) }
        return result
    }

    /// A summary of the embedded tokenizer.
    public func tokenizerSummary() throws -> TokenizerSummary {
        try TokenizerSummary(json: tokenizerJSON, source: "\(path): /tokenizer/tokenizer.json")
    }
}

extension Checkpoint {
    /// The chat template as transformers loads it: the stored chat_template.jinja first, else the
    /// `chat_template` of tokenizer_config.json (a string, or the `default` entry of a list of
    /// named templates). nil when there is none.
    public func storedChatTemplate() throws -> (origin: String, text: String)? {
        if let chatTemplate { return ("\(path): /tokenizer/chat_template.jinja", chatTemplate) }
        guard let configText = tokenizerConfigJSON else { return nil }
        let source = "\(path): /tokenizer/tokenizer_config.json"
        let config = try JSONValue.parse(configText, source: source)
        return try Self.chatTemplate(in: config, source: source).map { ("\(source): chat_template", $0) }
    }

    /// The `chat_template` entry of a tokenizer_config.json.
    public static func chatTemplate(in config: JSONValue, source: String) throws -> String? {
        switch config["chat_template"] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .array(let named)?:
            let templates = named.compactMap { entry -> (String, String)? in
                guard let name = entry["name"]?.stringValue, let text = entry["template"]?.stringValue else { return nil }
                return (name, text)
            }
            guard let chosen = templates.first(where: { $0.0 == "default" }) ?? templates.first else {
                throw IRMError("\(source): \"chat_template\" is a list without {\"name\", \"template\"} entries")
            }
            return chosen.1
        case let other?:
            throw IRMError("\(source): \"chat_template\" should be a string or a list of named templates, found \(other.brief)")
        }
    }
}
