import Foundation

/// Converts a Hugging Face model directory (config.json, safetensors weights, tokenizer.json) into
/// an irm checkpoint, in pure Swift.
public enum HuggingFaceImporter {
    /// The storage type of the converted tensors. `auto` keeps each tensor's source type.
    public enum TargetDType: String, CaseIterable, Sendable {
        case auto, f32, f16, bf16
    }

    public struct Options: Sendable {
        public var dtype: TargetDType = .auto
        /// A tokenizer.json to embed instead of the directory's own.
        public var tokenizerPath: String?
        public var sourceModel: String?
        public var trainingStep: Int?
        public var beta: Double?
        public var notes: String?
        /// A PEFT LoRA adapter directory to merge into the weights (`LoRAAdapter`).
        public var adapterPath: String?
        public init() {}
    }

    public struct Report: Sendable {
        public let architecture: Architecture
        public let kind: CheckpointKind
        public let tensorCount: Int
        public let parameterCount: Int
        /// Source tensors that were not written, and why.
        public let dropped: [String]
        /// The merged adapter's one-line summary, when one was merged.
        public var adapterSummary: String? = nil
        /// Base tensors the adapter changed.
        public var adaptedTensorCount: Int = 0
        /// Doubts that did not stop the conversion (an adapter naming another base, ...).
        public var warnings: [String] = []
    }

    static let supportedSourceDTypes: Set<String> = ["F32", "F16", "BF16"]

    public static func convert(directory: String, output: String, options: Options = Options()) throws -> Report {
        if let beta = options.beta, !Provenance.isValidBeta(beta) {
            throw IRMError("--beta is \(beta); expected \(Provenance.betaRule) (the KL coefficient used in training)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IRMError("\(directory): expected a Hugging Face model directory (config.json, model.safetensors, tokenizer.json), found \(FileManager.default.fileExists(atPath: directory) ? "a file" : "nothing")")
        }
        let dir = URL(fileURLWithPath: directory, isDirectory: true)
        let outputURL = URL(fileURLWithPath: output)
        // Checked and locked before anything is read; the writer publishes under this claim.
        let claim = try AtomicOutput.claim(outputURL, as: .file)
        defer { claim.release() }

        // Configuration.
        let configURL = dir.appendingPathComponent("config.json")
        if !FileManager.default.fileExists(atPath: configURL.path),
           FileManager.default.fileExists(atPath: dir.appendingPathComponent(LoRAAdapter.configFileName).path) {
            throw IRMError("\(directory): expected a Hugging Face model directory with config.json, found a PEFT adapter (\(LoRAAdapter.configFileName)); pass the base model's directory and merge the adapter with --adapter \(directory)")
        }
        let configData = try readFile(configURL, what: "the model configuration")
        let configJSON = try JSONValue.parse(configData, source: configURL.path)
        // The weights' headers first: their tensor count bounds the config's layer count.
        let shards = try weightFiles(in: dir)
        let config = try ModelConfig(json: configJSON, source: configURL.path, tensorCount: shards.reduce(0) { $0 + $1.entries.count })
        guard let configText = String(data: configData, encoding: .utf8) else {
            throw IRMError("\(configURL.path): expected UTF-8 text")
        }

        // Tokenizer.
        let tokenizerURL = options.tokenizerPath.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerURL.path) else {
            throw IRMError("\(tokenizerURL.path): no tokenizer.json found; irm embeds the tokenizer in every checkpoint. Save it with `tokenizer.save_pretrained(dir)` or pass --tokenizer FILE")
        }
        let tokenizerData = try readFile(tokenizerURL, what: "the tokenizer")
        let tokenizerText = try utf8Text(tokenizerData, url: tokenizerURL)
        _ = try TokenizerSummary(json: tokenizerText, source: tokenizerURL.path)
        let tokenizerConfigURL = dir.appendingPathComponent("tokenizer_config.json")
        var tokenizerConfigText: String? = nil
        if FileManager.default.fileExists(atPath: tokenizerConfigURL.path) {
            let data = try readFile(tokenizerConfigURL, what: "the tokenizer configuration")
            _ = try JSONValue.parse(data, source: tokenizerConfigURL.path)
            tokenizerConfigText = try utf8Text(data, url: tokenizerConfigURL)
        }
        let chatTemplateURL = dir.appendingPathComponent("chat_template.jinja")
        var chatTemplateText: String? = nil
        if FileManager.default.fileExists(atPath: chatTemplateURL.path) {
            chatTemplateText = try utf8Text(try readFile(chatTemplateURL, what: "the chat template"), url: chatTemplateURL,
                                            why: JSONValue.templateWhy)
        }

        // Weights.
        var sources: [String: (file: SafetensorsFile, entry: SafetensorsFile.Entry)] = [:]
        var dropped: [String] = []
        var tiedHeadCandidate = false
        for shard in shards {
            for entry in shard.entries.values.sorted(by: { $0.name < $1.name }) {
                if TensorLayout.isNonWeightBuffer(entry.name) {
                    dropped.append("\(entry.name) (a buffer, not a weight)")
                    continue
                }
                let name = TensorLayout.canonicalName(entry.name, architecture: config.architecture)
                if let existing = sources[name] {
                    throw IRMError("\(shard.path): tensor \(entry.name) maps to \(name), which \(existing.file.path) also holds as \(existing.entry.name)")
                }
                sources[name] = (shard, entry)
                if name == TensorLayout.outputHeadName(config.architecture) { tiedHeadCandidate = true }
            }
        }
        let kind = try inferKind(config: config, tensorNames: Set(sources.keys), source: configURL.path)
        if kind == .rewardModel || config.tiedEmbeddings, tiedHeadCandidate {
            let head = TensorLayout.outputHeadName(config.architecture)
            sources[head] = nil
            dropped.append(kind == .rewardModel ? "\(head) (a reward model has no language-model head)"
                                                 : "\(head) (tied to the input embedding: tie_word_embeddings is true)")
        }
        for (name, source) in sources where !supportedSourceDTypes.contains(source.entry.dtype) {
            throw IRMError("\(source.file.path): tensor \(source.entry.name) (\(name)) has dtype \(source.entry.dtype); irm imports F32, F16 and BF16 weights")
        }
        let problems = TensorLayout.validate(present: sources.mapValues(\.entry.shape), config: config, kind: kind)
        if !problems.isEmpty {
            let listed = problems.prefix(5).map(\.description).joined(separator: "; ")
            let more = problems.count > 5 ? " (and \(problems.count - 5) more)" : ""
            throw IRMError("\(directory): the weights do not match the \(config.architecture.rawValue) \(kind.rawValue) that config.json describes: \(listed)\(more)")
        }

        // The adapter, checked against every base tensor before anything is written.
        var merge: LoRAAdapter.Merge? = nil
        if let adapterPath = options.adapterPath {
            let adapter = try LoRAAdapter.load(directory: adapterPath)
            let names = [configJSON["_name_or_path"]?.stringValue, options.sourceModel].compactMap { $0 }.filter { !$0.isEmpty }
            merge = try adapter.merge(into: LoRAAdapter.Base(location: directory, architecture: config.architecture, kind: kind,
                                                            tiedEmbeddings: config.tiedEmbeddings,
                                                            shapes: sources.mapValues(\.entry.shape), names: names))
        }

        var provenance = Provenance(
            sourceModel: options.sourceModel ?? configJSON["_name_or_path"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? dir.lastPathComponent,
            trainingStep: options.trainingStep, beta: options.beta, notes: options.notes,
            writtenBy: "irm \(IRMVersion.string)")
        if let merge {
            provenance.adapterSource = merge.adapter.directory
            provenance.adapterConfig = merge.adapter.configJSON
        }
        let writer = try CheckpointWriter(destination: outputURL, architecture: config.architecture, kind: kind, configJSON: configText,
                                          tokenizerJSON: tokenizerText, tokenizerConfigJSON: tokenizerConfigText, chatTemplate: chatTemplateText,
                                          provenance: provenance)
        var parameters = 0
        do {
            for name in sources.keys.sorted() {
                guard let (file, entry) = sources[name] else { continue }
                let sourceDType = TensorDType(rawValue: entry.dtype.lowercased()) ?? .f32
                let target: TensorDType = switch options.dtype {
                case .auto: sourceDType
                case .f32: .f32
                case .f16: .f16
                case .bf16: .bf16
                }
                if let merge, merge.changedTensors.contains(name) {
                    let values = try merge.merged(name, values: try file.floatValues(of: entry), shape: entry.shape, storage: target)
                    try writer.addTensor(name: name, shape: entry.shape, values: values, dtype: target)
                } else if target == sourceDType {
                    try file.withBytes(of: entry) { try writer.addTensor(name: name, shape: entry.shape, rawBytes: $0, dtype: target) }
                } else {
                    try writer.addTensor(name: name, shape: entry.shape, values: try file.floatValues(of: entry), dtype: target)
                }
                parameters += entry.elementCount
            }
            try writer.finish()
        } catch {
            writer.cancel()
            throw error
        }
        var report = Report(architecture: config.architecture, kind: kind, tensorCount: sources.count, parameterCount: parameters, dropped: dropped)
        if let merge {
            report.adapterSummary = merge.adapter.summary
            report.adaptedTensorCount = merge.changedTensors.count
            report.warnings = merge.warnings
        }
        return report
    }

    /// The kind from config.json's `architectures` list, or from the tensors when it is absent.
    static func inferKind(config: ModelConfig, tensorNames: Set<String>, source: String) throws -> CheckpointKind {
        let classes = config.json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if let name = classes.first {
            if name.hasSuffix("ForSequenceClassification") { return .rewardModel }
            if name.hasSuffix("ForCausalLM") || name.hasSuffix("LMHeadModel") { return .policy }
            throw IRMError("\(source): architectures = [\"\(name)\"] is neither a causal LM nor a sequence-classification reward model; irm imports \(config.architecture.huggingFaceClasses.joined(separator: " and "))")
        }
        return tensorNames.contains("score.weight") ? .rewardModel : .policy
    }

    /// The safetensors files that hold the weights: the shards listed by
    /// model.safetensors.index.json, or model.safetensors.
    static func weightFiles(in dir: URL) throws -> [SafetensorsFile] {
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: index.path) {
            let json = try JSONValue.parse(try readFile(index, what: "the shard index"), source: index.path)
            guard let map = json["weight_map"]?.objectValue else {
                throw IRMError("\(index.path): expected a \"weight_map\" object mapping tensor names to shard files")
            }
            var shardNames: [String: [String]] = [:]
            for (tensor, file) in map {
                guard let file = file.stringValue, !file.contains("/"), !file.hasPrefix(".") else {
                    throw IRMError("\(index.path): weight_map[\"\(tensor)\"] should be a shard file name in the same directory, found \(file.brief)")
                }
                shardNames[file, default: []].append(tensor)
            }
            var shards: [SafetensorsFile] = []
            for (file, tensors) in shardNames.sorted(by: { $0.key < $1.key }) {
                let url = dir.appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw IRMError("\(url.path): shard listed in model.safetensors.index.json is missing")
                }
                let shard = try SafetensorsFile(path: url.path)
                if let absent = tensors.sorted().first(where: { shard.entries[$0] == nil }) {
                    throw IRMError("\(url.path): model.safetensors.index.json places tensor \(absent) in this shard, but the shard does not hold it")
                }
                shards.append(shard)
            }
            return shards
        }
        let single = dir.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) {
            return [try SafetensorsFile(path: single.path)]
        }
        let legacy = ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"].filter {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path)
        }
        let hint = legacy.isEmpty ? "" : " (found \(legacy.joined(separator: ", ")); re-save the model with `model.save_pretrained(dir, safe_serialization=True)`)"
        throw IRMError("\(dir.path): no model.safetensors or model.safetensors.index.json found\(hint)")
    }

    static func readFile(_ url: URL, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw IRMError("\(url.path): missing \(what)")
        }
        return try InputFile.contents(url.path, what: what)
    }

    /// The file's text, refusing a leading byte-order mark (`why` says why it is refused) that the
    /// decoding would drop: Hugging Face refuses one in JSON and keeps one in a template as text.
    static func utf8Text(_ data: Data, url: URL, why: String = JSONValue.jsonWhy) throws -> String {
        try JSONValue.refuseByteOrderMark(data, source: url.path, why: why)
        guard let text = String(data: data, encoding: .utf8) else {
            throw IRMError("\(url.path): expected UTF-8 text, found bytes that are not valid UTF-8")
        }
        return text
    }
}
