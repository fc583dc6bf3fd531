/// Names and constants of the irm checkpoint format, version 1.1 (docs/checkpoint-format.md).
public enum CheckpointFormat {
    public static let name = "irm-checkpoint"
    public static let version: Int64 = 1
    /// The minor version that irm writes. 1 added the per-tensor `crc32` attribute and the HDF5 1.8
    /// file format (checksummed metadata, fixed-length strings). Readers accept any minor version
    /// of version 1; a file without the attribute is 1.0.
    public static let minorVersion: Int64 = 1

    /// Root attributes.
    public static let formatAttribute = "irm_format"
    public static let versionAttribute = "irm_format_version"
    public static let minorVersionAttribute = "irm_format_minor"
    public static let architectureAttribute = "architecture"
    public static let kindAttribute = "kind"

    /// Root datasets and groups.
    public static let configDataset = "config"
    public static let tokenizerGroup = "tokenizer"
    public static let tokenizerJSONDataset = "tokenizer.json"
    public static let tokenizerConfigDataset = "tokenizer_config.json"
    /// The chat template that transformers 5 saves beside the tokenizer (`chat_template.jinja`).
    public static let chatTemplateDataset = "chat_template.jinja"
    public static let tensorsGroup = "tensors"
    /// The tensor attribute holding the CRC-32 (zlib's) of the values' little-endian bytes, a uint32.
    public static let checksumAttribute = "crc32"
    public static let provenanceGroup = "provenance"
}

/// The storage type of a tensor in a checkpoint. Compute is always float32.
public enum TensorDType: String, CaseIterable, Sendable, Codable {
    case f32, f16, bf16
    /// Accepted on read (hand-written files often hold numpy's default float64); never written.
    case f64

    public var byteWidth: Int {
        switch self {
        case .f16, .bf16: 2
        case .f32: 4
        case .f64: 8
        }
    }

    var elementType: HDF5ElementType {
        switch self {
        case .f32: .float32
        case .f16: .float16
        case .bf16: .bfloat16
        case .f64: .float64
        }
    }

    init?(_ elementType: HDF5ElementType) {
        switch elementType {
        case .float32: self = .f32
        case .float16: self = .f16
        case .bfloat16: self = .bf16
        case .float64: self = .f64
        default: return nil
        }
    }
}

/// Where a checkpoint came from. Every field is optional.
public struct Provenance: Sendable, Equatable, Codable {
    /// The model it was converted or trained from (a Hub name or a path).
    public var sourceModel: String?
    /// The training step at which it was saved.
    public var trainingStep: Int?
    /// The β (KL coefficient) used in training, when the checkpoint is an RLHF/DPO policy.
    public var beta: Double?
    /// Free-form notes.
    public var notes: String?
    /// The tool that wrote the file, e.g. `irm 0.1.0`.
    public var writtenBy: String?
    /// The PEFT adapter directory merged into the weights (`irm convert --adapter`), as given.
    public var adapterSource: String?
    /// That adapter's adapter_config.json, verbatim.
    public var adapterConfig: String?

    public init(sourceModel: String? = nil, trainingStep: Int? = nil, beta: Double? = nil, notes: String? = nil, writtenBy: String? = nil,
                adapterSource: String? = nil, adapterConfig: String? = nil) {
        self.sourceModel = sourceModel
        self.trainingStep = trainingStep
        self.beta = beta
        self.notes = notes
        self.writtenBy = writtenBy
        self.adapterSource = adapterSource
        self.adapterConfig = adapterConfig
    }

    static let sourceModelAttribute = "source_model"
    static let trainingStepAttribute = "training_step"
    static let betaAttribute = "beta"
    static let notesAttribute = "notes"
    static let writtenByAttribute = "written_by"
    static let adapterSourceAttribute = "adapter_source"
    static let adapterConfigAttribute = "adapter_config"

    public var isEmpty: Bool { self == Provenance() }

    /// What a β must be: the KL coefficient scales every implicit reward, so NaN, infinity, 0 or a
    /// negative value would silently give rewards that mean nothing (or flip their sign).
    static let betaRule = "a finite number > 0"
    static func isValidBeta(_ beta: Double) -> Bool { beta.isFinite && beta > 0 }

    enum CodingKeys: String, CodingKey {
        case sourceModel = "source_model", trainingStep = "training_step", beta, notes, writtenBy = "written_by"
        case adapterSource = "adapter_source", adapterConfig = "adapter_config"
    }
}

/// A tensor's name, shape and storage type, read without its values.
public struct TensorInfo: Sendable, Equatable, Codable {
    public let name: String
    public let shape: [Int]
    public let dtype: TensorDType
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A tensor's values widened to float32, row-major in the stored shape.
public struct CheckpointTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
}
