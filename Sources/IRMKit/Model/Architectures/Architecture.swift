import Foundation

/// Everything irm knows about one transformer family, declared in one file under
/// Model/Architectures/: the config.json keys it reads (and refuses), the tensors a checkpoint of
/// it stores, and how its forward pass is put together. `ArchitectureRegistry` lists them; the
/// rest of irm (`ModelConfig`, `TensorLayout`, `irm convert`, `irm inspect`, `ModelLoading`, the
/// LoRA merge) asks the definition and knows no family by name.
///
/// ## Adding an architecture
/// 1. Write `Model/Architectures/<Family>.swift` with a `struct <Family>Architecture:
///    ArchitectureDefinition`:
///    - `readConfig` reads the family's keys into the common `ModelConfig` fields with
///      `ConfigReader` (whose messages name the file and the key) and refuses, naming the key,
///      whatever the forward pass does not compute, so that `convert` and `inspect` refuse what
///      `score` would;
///    - `backboneTensors` lists every tensor but the output head with its PyTorch shape; this
///      table is the single source for validation and for loading;
///    - `makeModel` takes those tensors from `CheckpointWeights` by name (the shapes come from the
///      table) and builds the model: a `GatedDecoderModel` for the RMSNorm/RoPE/gated-MLP families,
///      or a `TransformerModel` of its own written with the shared kernels (`Kernels`,
///      `CausalAttention`).
/// 2. Add one line to `ArchitectureRegistry.all`.
/// 3. Add tiny models to a fixture script (scripts/fixtures/make_architecture_fixtures.py makes
///    float64 references with transformers and an independent numpy pass), regenerate, and list
///    the fixtures in Tests/IRMKitTests/Model/LogProbParityTests.swift.
protocol ArchitectureDefinition: Sendable {
    /// Reads the family's configuration keys into `config`, whose token ids, label count and
    /// `json` are already set, and refuses settings the forward pass does not compute.
    func readConfig(_ reader: ConfigReader, modelType: String, into config: inout ModelConfig) throws
    /// The prefix of the backbone's tensors in the causal-LM and sequence-classification classes
    /// (`model.`); names saved by a bare base model get it prepended on import.
    var backbonePrefix: String { get }
    /// The input embedding, which is also the output head when the two are tied.
    var inputEmbeddingName: String { get }
    /// The untied language-model head.
    var outputHeadName: String { get }
    /// Every tensor except the output head (`lm_head`/`score`), with its shape as PyTorch stores it
    /// (`nn.Linear` weights `[out, in]`).
    func backboneTensors(_ config: ModelConfig) -> [String: [Int]]
    /// Builds the runnable model from the checkpoint's tensors.
    func makeModel(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel
    /// Hugging Face classes for messages, from the class-name stem (`Llama`).
    func huggingFaceClasses(stem: String) -> [String]
    /// Modules whose weights are stored `[in, out]` (GPT-2's `Conv1D`), for the LoRA merge.
    var conv1DModuleSuffixes: [String] { get }
    /// Embedding modules other than the input embedding (learned positions), for the LoRA merge.
    var otherEmbeddingModules: [String] { get }
    /// Family-specific settings that `irm inspect` lists, as (key, value).
    func details(_ config: ModelConfig) -> [(String, String)]
}

extension ArchitectureDefinition {
    var outputHeadName: String { "lm_head.weight" }
    func huggingFaceClasses(stem: String) -> [String] { [stem + "ForCausalLM", stem + "ForSequenceClassification"] }
    var conv1DModuleSuffixes: [String] { [] }
    var otherEmbeddingModules: [String] { [] }
    func details(_ config: ModelConfig) -> [(String, String)] { [] }
}

/// A transformer family irm runs, named by its Hugging Face `model_type`.
public struct Architecture: Hashable, Sendable, CustomStringConvertible {
    /// The Hugging Face `model_type`, also stored as the checkpoint's `architecture` attribute.
    public let rawValue: String
    /// The stem of the Hugging Face class names (`Gemma2` in `Gemma2ForCausalLM`).
    let classStem: String
    let definition: any ArchitectureDefinition

    init(_ modelType: String, classStem: String, _ definition: any ArchitectureDefinition) {
        rawValue = modelType
        self.classStem = classStem
        self.definition = definition
    }

    /// The registered architecture of a `model_type`, or nil.
    public init?(rawValue: String) {
        guard let found = ArchitectureRegistry.all.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = found
    }

    public static func == (a: Architecture, b: Architecture) -> Bool { a.rawValue == b.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
    public var description: String { rawValue }

    public static var allCases: [Architecture] { ArchitectureRegistry.all }
    public static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The Hugging Face classes this architecture is imported from, for messages.
    var huggingFaceClasses: [String] { definition.huggingFaceClasses(stem: classStem) }
}

/// The architectures irm runs: one line each.
enum ArchitectureRegistry {
    static let all: [Architecture] = [
        Architecture("gpt2", classStem: "GPT2", GPT2Architecture()),
        Architecture("gpt_neox", classStem: "GPTNeoX", GPTNeoXArchitecture()),
        Architecture("llama", classStem: "Llama", LlamaFamilyArchitecture()),
        Architecture("mistral", classStem: "Mistral", LlamaFamilyArchitecture()),
        Architecture("qwen2", classStem: "Qwen2", LlamaFamilyArchitecture()),
        Architecture("gemma", classStem: "Gemma", GemmaArchitecture()),
        Architecture("gemma2", classStem: "Gemma2", Gemma2Architecture()),
        Architecture("phi3", classStem: "Phi3", Phi3Architecture()),
        Architecture("olmo2", classStem: "Olmo2", OLMo2Architecture()),
        Architecture("opt", classStem: "OPT", OPTArchitecture()),
    ]
}

extension Architecture {
    // The architectures that tests and examples name; any registered one works by `model_type`.
    static let gpt2 = registered("gpt2")
    static let gptNeoX = registered("gpt_neox")
    static let llama = registered("llama")
    static let mistral = registered("mistral")
    static let qwen2 = registered("qwen2")

    private static func registered(_ modelType: String) -> Architecture {
        guard let found = ArchitectureRegistry.all.first(where: { $0.rawValue == modelType }) else {
            preconditionFailure("\(modelType) is not in ArchitectureRegistry.all")
        }
        return found
    }
}
