import CBLAS
import Foundation

/// A PEFT LoRA adapter directory (`adapter_config.json` + `adapter_model.safetensors`), read and
/// checked in full, ready to be merged into the base model it was trained on.
///
/// For every adapted module with base weight `W`, the merge computes, as peft's `merge_and_unload()`:
///
///     W' = W + s · B·A,        s = α / r   (or α / √r with `use_rslora`)
///
/// where `A` is `lora_A` `[r, in]`, `B` is `lora_B` `[out, r]`, and `r` and `α` come from `r` /
/// `lora_alpha`, or from the first `rank_pattern` / `alpha_pattern` key that matches the module.
/// GPT-2's `Conv1D` stores `W` as `[in, out]` and takes `(B·A)ᵀ`, as does an embedding (whose
/// `lora_embedding_A` is `[r, vocab]` and `lora_embedding_B` `[dim, r]`); peft decides that by the
/// module's type, whatever `fan_in_fan_out` says, and so does irm. With `lora_bias`, the module's
/// bias gains `s · lora_B.bias`. Tensors that the adapter saves whole (trained biases under
/// `bias = "all"` or `"lora_only"`, `modules_to_save` heads, a saved embedding base layer) replace
/// the base's before the delta is added.
///
/// The sum is formed in Double (`B·A` by `cblas_dgemm`) and rounded once to Float, then to the
/// storage type of the base tensor, so an f16/bf16 base stays f16/bf16 and the in-memory merge
/// and `irm convert --adapter` give the same bits. peft rounds the delta to the weight's type
/// before adding it, so on half-precision bases the two can differ by one unit in the last place.
///
/// Anything irm cannot merge exactly (DoRA, other PEFT methods, initialisations that rewrite the
/// base, layer replication, ...) is refused by name rather than merged approximately.
public struct LoRAAdapter: Sendable {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// The directory as given.
    public let directory: String
    public let configPath: String
    public let weightsPath: String
    /// adapter_config.json, verbatim.
    public let configJSON: String
    /// `base_model_name_or_path`, when the config records one.
    public let baseModelName: String?
    /// `task_type` (`CAUSAL_LM`, `SEQ_CLS`, ...), when recorded.
    public let taskType: String?
    public let rank: Int
    public let alpha: Double
    public let usesRSLoRA: Bool
    /// The low-rank pairs, keyed by peft's module path (the key without `base_model.model.` and
    /// the `lora_A.weight` suffix).
    let pairs: [String: LowRankPair]
    /// Tensors saved whole, keyed by peft's tensor path (`base_layer.` and `modules_to_save.` removed).
    let wholeTensors: [String: WholeTensor]
    let targets: TargetRule
    /// `exclude_modules`: names (exact or dot-suffix) or one full-match regular expression.
    let excludedNames: [String]
    let excludedPattern: String?
    let rankPattern: [String: Int]
    let alphaPattern: [String: Double]
    let bias: String
    let modulesToSave: [String]
    let usesLoRABias: Bool

    /// The files whose bytes determine the merge, for a manifest's SHA-256 list.
    public var inputFiles: [String] { [configPath, weightsPath] }

    /// One line for a manifest or provenance, e.g. `LoRA r=4 alpha=8 on 28 modules (+1 whole tensor) from DIR`.
    public var summary: String {
        let ranks = Set(pairs.values.map(\.rank)).sorted()
        let rankText = ranks.count == 1 ? "r=\(ranks[0])" : "r=\(ranks.map(String.init).joined(separator: "/"))"
        let whole = wholeTensors.isEmpty ? "" : " (+\(wholeTensors.count) whole tensor\(wholeTensors.count == 1 ? "" : "s"))"
        return "LoRA \(rankText) alpha=\(Self.format(alpha))\(usesRSLoRA ? " rslora" : "") on \(pairs.count) module\(pairs.count == 1 ? "" : "s")\(whole) from \(directory)"
    }

    struct LowRankPair: Sendable {
        let modulePath: String
        let isEmbedding: Bool
        let keyA: String, keyB: String
        let shapeA: [Int], shapeB: [Int]
        let a: [Float], b: [Float]
        let biasKey: String?
        let bias: [Float]?
        var rank: Int { shapeA.first ?? 0 }
    }

    struct WholeTensor: Sendable {
        let key: String
        let path: String
        let shape: [Int]
        let values: [Float]
        let origin: Origin
        enum Origin: Sendable { case bias, modulesToSave, baseLayer }
    }

    enum TargetRule: Sendable {
        case names([String], layers: [Int]?, layersPattern: [String])
        case regex(String)
        case allLinear
        case none
    }

    // MARK: - Reading

    /// Reads and checks an adapter directory. Fails, naming the file and the key, on anything
    /// it cannot merge exactly.
    public static func load(directory: String) throws -> LoRAAdapter {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IRMError("\(directory): expected a PEFT adapter directory (adapter_config.json, adapter_model.safetensors), found \(FileManager.default.fileExists(atPath: directory) ? "a file" : "nothing")")
        }
        let dir = URL(fileURLWithPath: directory, isDirectory: true)
        let configURL = dir.appendingPathComponent(configFileName)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            let nested = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().filter {
                FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).appendingPathComponent(configFileName).path)
            }
            let hint = nested.isEmpty ? "" : "; it holds adapters in \(nested.joined(separator: ", ")) (pass one of those directories)"
            throw IRMError("\(directory): expected a PEFT adapter directory with \(configFileName), found none\(hint)")
        }
        let configData = try HuggingFaceImporter.readFile(configURL, what: "the adapter configuration")
        let configText = try HuggingFaceImporter.utf8Text(configData, url: configURL)
        let json = try JSONValue.parse(configData, source: configURL.path)
        guard let config = json.objectValue else {
            throw IRMError("\(configURL.path): expected a JSON object, found \(json.brief)")
        }
        let source = configURL.path
        func fail(_ key: String, _ message: String) -> IRMError { IRMError("\(source): \(key): \(message)") }

        // The method.
        guard let peftType = config["peft_type"]?.stringValue else {
            throw fail("peft_type", "expected \"LORA\", found \(config["peft_type"]?.brief ?? "no such key")")
        }
        guard peftType.uppercased() == "LORA" else {
            throw fail("peft_type", "expected \"LORA\", found \"\(peftType)\"; irm merges LoRA adapters only (merge others with peft's merge_and_unload() and convert the merged model)")
        }
        try refuseUnsupportedOptions(config, fail: fail)

        // Rank, alpha, patterns.
        guard let rank = config["r"]?.intValue else { throw fail("r", "expected a positive integer, found \(config["r"]?.brief ?? "no such key")") }
        guard rank > 0 else { throw fail("r", "expected a positive integer, found \(rank)") }
        let alpha = try config["lora_alpha"].map { value -> Double in
            guard let a = value.doubleValue, a.isFinite else { throw fail("lora_alpha", "expected a number, found \(value.brief)") }
            return a
        } ?? 8
        let usesRSLoRA = try boolOption(config, "use_rslora", fail: fail)
        var rankPattern: [String: Int] = [:]
        for (key, value) in config["rank_pattern"]?.objectValue ?? [:] {
            guard let r = value.intValue, r > 0 else { throw fail("rank_pattern[\"\(key)\"]", "expected a positive integer, found \(value.brief)") }
            try compile(key, key: "rank_pattern", fail: fail)
            rankPattern[key] = r
        }
        var alphaPattern: [String: Double] = [:]
        for (key, value) in config["alpha_pattern"]?.objectValue ?? [:] {
            guard let a = value.doubleValue, a.isFinite else { throw fail("alpha_pattern[\"\(key)\"]", "expected a number, found \(value.brief)") }
            try compile(key, key: "alpha_pattern", fail: fail)
            alphaPattern[key] = a
        }

        // Which modules.
        let targets: TargetRule
        switch config["target_modules"] {
        case .string(let pattern)?:
            if pattern.lowercased() == "all-linear" {
                targets = .allLinear
            } else {
                try compile(pattern, key: "target_modules", fail: fail)
                targets = .regex(pattern)
            }
        case .array(let items)?:
            let names = try items.map { item -> String in
                guard let s = item.stringValue else { throw fail("target_modules", "expected module names, found \(item.brief)") }
                return s
            }
            var layers: [Int]? = nil
            switch config["layers_to_transform"] {
            case nil, .null?: break
            case .array(let values)?:
                layers = try values.map { v in
                    guard let i = v.intValue else { throw fail("layers_to_transform", "expected layer indices, found \(v.brief)") }
                    return i
                }
                if layers?.isEmpty == true { layers = nil }
            case let value?:
                guard let i = value.intValue else { throw fail("layers_to_transform", "expected a layer index or a list of them, found \(value.brief)") }
                layers = [i]
            }
            var layersPattern: [String] = []
            switch config["layers_pattern"] {
            case nil, .null?: break
            case .string(let s)?: layersPattern = s.isEmpty ? [] : [s]
            case .array(let values)?:
                layersPattern = try values.map { v in
                    guard let s = v.stringValue else { throw fail("layers_pattern", "expected names, found \(v.brief)") }
                    return s
                }
            case let value?: throw fail("layers_pattern", "expected a name or a list of names, found \(value.brief)")
            }
            for pattern in layersPattern { try compile(pattern, key: "layers_pattern", fail: fail) }
            targets = .names(names, layers: layers, layersPattern: layersPattern)
        case nil, .null?:
            targets = .none
        case let value?:
            throw fail("target_modules", "expected a list of module names or a regular expression, found \(value.brief)")
        }
        if case .regex = targets, let layers = config["layers_to_transform"], !layers.isNull, layers.arrayValue?.isEmpty != true {
            throw fail("layers_to_transform", "expected null with a regular-expression target_modules (peft ignores it there), found \(layers.brief)")
        }
        var excludedNames: [String] = []
        var excludedPattern: String? = nil
        switch config["exclude_modules"] {
        case nil, .null?: break
        case .string(let pattern)?:
            try compile(pattern, key: "exclude_modules", fail: fail)
            excludedPattern = pattern
        case .array(let items)?:
            excludedNames = try items.map { item in
                guard let s = item.stringValue else { throw fail("exclude_modules", "expected module names, found \(item.brief)") }
                return s
            }
        case let value?: throw fail("exclude_modules", "expected a list of module names or a regular expression, found \(value.brief)")
        }
        let bias = config["bias"]?.stringValue ?? "none"
        guard ["none", "all", "lora_only"].contains(bias) else {
            throw fail("bias", "expected \"none\", \"all\" or \"lora_only\", found \(config["bias"]?.brief ?? "")")
        }
        var modulesToSave: [String] = []
        switch config["modules_to_save"] {
        case nil, .null?: break
        case .array(let items)?:
            modulesToSave = try items.map { item in
                guard let s = item.stringValue else { throw fail("modules_to_save", "expected module names, found \(item.brief)") }
                return s
            }
        case let value?: throw fail("modules_to_save", "expected a list of module names, found \(value.brief)")
        }
        for name in modulesToSave { try compile(name, key: "modules_to_save", fail: fail) }
        let usesLoRABias = try boolOption(config, "lora_bias", fail: fail)

        // Weights.
        let weightsURL = dir.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let pickle = dir.appendingPathComponent("adapter_model.bin")
            if FileManager.default.fileExists(atPath: pickle.path) {
                throw IRMError("\(pickle.path): expected \(weightsFileName), found a pickled adapter_model.bin, which irm does not read; re-save the adapter with `model.save_pretrained(dir, safe_serialization=True)`")
            }
            throw IRMError("\(weightsURL.path): missing the adapter weights (expected \(weightsFileName) beside \(configFileName))")
        }
        let file = try SafetensorsFile(path: weightsURL.path)
        let weights = weightsURL.path

        var halves: [String: (a: SafetensorsFile.Entry?, b: SafetensorsFile.Entry?, bias: SafetensorsFile.Entry?, embedding: Bool)] = [:]
        var wholeTensors: [String: WholeTensor] = [:]
        for entry in file.entries.values.sorted(by: { $0.name < $1.name }) {
            let key = entry.name
            var path = key.hasPrefix("base_model.model.") ? String(key.dropFirst("base_model.model.".count)) : key
            func pairSlot(_ suffix: String) -> String? {
                path.hasSuffix(suffix) ? String(path.dropLast(suffix.count)) : nil
            }
            if path.contains("lora_magnitude_vector") {
                throw IRMError("\(weights): tensor \(key): expected plain LoRA weights, found a DoRA magnitude vector; irm does not merge DoRA (use_dora)")
            }
            if path.contains("trainable_tokens_") || path.contains(".token_adapter.") {
                throw IRMError("\(weights): tensor \(key): expected plain LoRA weights, found trainable-token deltas (trainable_token_indices), which irm does not merge")
            }
            guard HuggingFaceImporter.supportedSourceDTypes.contains(entry.dtype) else {
                throw IRMError("\(weights): tensor \(key): expected F32, F16 or BF16, found \(entry.dtype)")
            }
            if let module = pairSlot(".lora_A.weight") {
                halves[module, default: (nil, nil, nil, false)].a = entry
            } else if let module = pairSlot(".lora_B.weight") {
                halves[module, default: (nil, nil, nil, false)].b = entry
            } else if let module = pairSlot(".lora_B.bias") {
                halves[module, default: (nil, nil, nil, false)].bias = entry
            } else if let module = pairSlot(".lora_embedding_A") {
                halves[module, default: (nil, nil, nil, false)].a = entry
                halves[module]?.embedding = true
            } else if let module = pairSlot(".lora_embedding_B") {
                halves[module, default: (nil, nil, nil, false)].b = entry
                halves[module]?.embedding = true
            } else if path.contains("lora_") || path.contains(".default.") {
                throw IRMError("\(weights): tensor \(key): expected lora_A.weight, lora_B.weight, lora_B.bias, lora_embedding_A/B or a whole tensor, found a LoRA tensor irm does not know")
            } else {
                let origin: WholeTensor.Origin
                if path.contains(".base_layer.") {
                    path = path.replacingOccurrences(of: ".base_layer.", with: ".")
                    origin = path.hasSuffix(".bias") ? .bias : .baseLayer
                } else if path.contains(".modules_to_save.") {
                    path = path.replacingOccurrences(of: ".modules_to_save.", with: ".")
                    origin = .modulesToSave
                } else if path.contains(".original_module.") {
                    continue  // older peft saved the untrained copy beside the trained one
                } else {
                    let module = path.split(separator: ".").dropLast().joined(separator: ".")
                    origin = modulesToSave.contains(where: { module.hasSuffix($0) }) ? .modulesToSave : .bias
                }
                switch origin {
                case .bias:
                    guard path.hasSuffix(".bias"), bias != "none" else {
                        throw IRMError("\(weights): tensor \(key): expected only LoRA weights\(bias == "none" ? " (bias = \"none\")" : ", trained biases") and modules_to_save \(modulesToSave), found a whole tensor that adapter_config.json does not account for")
                    }
                case .modulesToSave:
                    let module = path.split(separator: ".").dropLast().joined(separator: ".")
                    guard modulesToSave.contains(where: { module.hasSuffix($0) }) else {
                        throw IRMError("\(weights): tensor \(key): expected the module to be listed in modules_to_save \(modulesToSave), found it saved whole")
                    }
                case .baseLayer: break
                }
                if let existing = wholeTensors[path] {
                    throw IRMError("\(weights): tensors \(existing.key) and \(key) both replace \(path)")
                }
                let values = try file.floatValues(of: entry)
                try FiniteValues.require(values, shape: entry.shape, location: "\(weights): tensor \(key)")
                wholeTensors[path] = WholeTensor(key: key, path: path, shape: entry.shape, values: values, origin: origin)
            }
        }

        var pairs: [String: LowRankPair] = [:]
        for (module, half) in halves.sorted(by: { $0.key < $1.key }) {
            let prefix = file.entries.keys.contains("base_model.model.\(module)\(half.embedding ? ".lora_embedding_A" : ".lora_A.weight")") ? "base_model.model." : ""
            let nameA = prefix + module + (half.embedding ? ".lora_embedding_A" : ".lora_A.weight")
            let nameB = prefix + module + (half.embedding ? ".lora_embedding_B" : ".lora_B.weight")
            guard let a = half.a else { throw IRMError("\(weights): tensor \(nameA): missing (the file holds \(half.b?.name ?? half.bias?.name ?? "its partner") but not A)") }
            guard let b = half.b else { throw IRMError("\(weights): tensor \(nameB): missing (the file holds \(a.name) but not B)") }
            guard a.shape.count == 2, b.shape.count == 2 else {
                throw IRMError("\(weights): tensor \(a.shape.count == 2 ? b.name : a.name): expected a matrix, found shape \(a.shape.count == 2 ? b.shape : a.shape)")
            }
            guard a.shape[0] > 0 else { throw IRMError("\(weights): tensor \(a.name): expected rank r > 0 rows, found shape \(a.shape)") }
            guard b.shape[1] == a.shape[0] else {
                throw IRMError("\(weights): tensor \(b.name): expected [out, \(a.shape[0])] to match \(a.name) \(a.shape), found \(b.shape)")
            }
            if let biasEntry = half.bias {
                guard usesLoRABias else { throw IRMError("\(weights): tensor \(biasEntry.name): expected no LoRA B bias (lora_bias = false), found one") }
                guard biasEntry.shape == [b.shape[0]] else {
                    throw IRMError("\(weights): tensor \(biasEntry.name): expected shape [\(b.shape[0])], found \(biasEntry.shape)")
                }
            } else if usesLoRABias && !half.embedding {
                throw IRMError("\(weights): tensor \(prefix)\(module).lora_B.bias: missing, though adapter_config.json sets lora_bias = true")
            }
            let valuesA = try file.floatValues(of: a), valuesB = try file.floatValues(of: b)
            try FiniteValues.require(valuesA, shape: a.shape, location: "\(weights): tensor \(a.name)")
            try FiniteValues.require(valuesB, shape: b.shape, location: "\(weights): tensor \(b.name)")
            let biasValues = try half.bias.map { try file.floatValues(of: $0) }
            if let biasValues, let biasEntry = half.bias {
                try FiniteValues.require(biasValues, shape: biasEntry.shape, location: "\(weights): tensor \(biasEntry.name)")
            }
            pairs[module] = LowRankPair(modulePath: module, isEmbedding: half.embedding, keyA: a.name, keyB: b.name, shapeA: a.shape, shapeB: b.shape,
                                        a: valuesA, b: valuesB, biasKey: half.bias?.name, bias: biasValues)
        }
        if pairs.isEmpty && wholeTensors.isEmpty {
            throw IRMError("\(weights): expected LoRA tensors (…lora_A.weight / …lora_B.weight), found \(file.entries.isEmpty ? "no tensors" : "none among \(file.entries.count) tensors")")
        }

        let baseName = config["base_model_name_or_path"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return LoRAAdapter(directory: directory, configPath: configURL.path, weightsPath: weights, configJSON: configText,
                           baseModelName: baseName, taskType: config["task_type"]?.stringValue, rank: rank, alpha: alpha,
                           usesRSLoRA: usesRSLoRA, pairs: pairs, wholeTensors: wholeTensors, targets: targets,
                           excludedNames: excludedNames, excludedPattern: excludedPattern, rankPattern: rankPattern, alphaPattern: alphaPattern, bias: bias, modulesToSave: modulesToSave,
                           usesLoRABias: usesLoRABias)
    }

    /// Options that change what a merge means and that irm does not implement, refused by name.
    /// Keys that only matter during training (dropout, init of A and B, runtime settings) are ignored.
    private static func refuseUnsupportedOptions(_ config: [String: JSONValue], fail: (String, String) -> IRMError) throws {
        func isSet(_ key: String) -> Bool {
            switch config[key] {
            case nil, .null?, .bool(false)?: false
            case .array(let a)?: !a.isEmpty
            case .object(let o)?: !o.isEmpty
            default: true
            }
        }
        let refusals: [(key: String, what: String)] = [
            ("use_dora", "DoRA (weight-decomposed LoRA) rescales each merged column by a learned magnitude"),
            ("megatron_config", "Megatron-sharded LoRA layers"),
            ("layer_replication", "layer replication rebuilds the layer stack"),
            ("use_qalora", "QA-LoRA pools the input before A"),
            ("alora_invocation_tokens", "activated LoRA applies only after invocation tokens, so it has no merged form"),
            ("velora_config", "VeLoRA"),
            ("monteclora_config", "MonteCLoRA"),
            ("arrow_config", "Arrow routing between adapters has no merged form"),
            ("kasa_config", "KaSA"),
            ("use_bdlora", "block-diagonal LoRA"),
            ("target_parameters", "LoRA on bare parameters (target_parameters)"),
            ("trainable_token_indices", "trainable token deltas"),
        ]
        for refusal in refusals where isSet(refusal.key) {
            throw fail(refusal.key, "expected it unset, found \(config[refusal.key]?.brief ?? ""); irm does not merge this (\(refusal.what)); merge with peft's merge_and_unload() and convert the merged model")
        }
        switch config["init_lora_weights"] {
        case nil, .null?, .bool?: break
        case .string(let s)? where ["gaussian", "eva", "orthogonal"].contains(s.lowercased()): break
        case .string(let s)?:
            throw fail("init_lora_weights", "expected true, false, \"gaussian\", \"eva\" or \"orthogonal\", found \"\(s)\": this initialisation rewrites the base weights, so the adapter does not apply to the original base; re-save it with save_pretrained(..., path_initial_model_for_weight_conversion=...) to get a plain LoRA")
        case let value?:
            throw fail("init_lora_weights", "expected a boolean or a string, found \(value.brief)")
        }
    }

    private static func boolOption(_ config: [String: JSONValue], _ key: String, fail: (String, String) -> IRMError) throws -> Bool {
        switch config[key] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case let value?: throw fail(key, "expected true or false, found \(value.brief)")
        }
    }

    /// Checks a pattern that peft matches with Python's `re`. adapter_config.json is untrusted, so
    /// patterns run on `LinearRegex` (Python syntax), which refuses what it cannot run in linear time.
    private static func compile(_ pattern: String, key: String, fail: (String, String) -> IRMError) throws {
        do {
            _ = try LinearRegex(pattern, syntax: .python)
        } catch {
            if error.isRefusal { throw fail(key, "expected a regular expression, found \"\(pattern)\": \(error.message)") }
            throw fail(key, "expected a regular expression, found \"\(pattern)\", which does not compile: \(error.message)")
        }
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }
}

// MARK: - Matching (peft's rules)

extension LoRAAdapter {
    /// Python's `re.fullmatch(pattern, text)`; false for a pattern that does not compile.
    private static func wholeMatch(_ pattern: String, _ text: String) -> Bool {
        (try? LinearRegex(pattern, syntax: .python))?.wholeMatch(text) != nil
    }

    /// peft's `check_target_module_exists` for a module path `key` (as peft names it).
    func isTargeted(_ key: String) -> Bool {
        if let excludedPattern, Self.wholeMatch(excludedPattern, key) { return false }
        if excludedNames.contains(where: { key == $0 || key.hasSuffix(".\($0)") }) { return false }
        if modulesToSave.contains(where: { Self.wholeMatch("(.*\\.)?(\($0))(\\..*)?", key) }) { return false }
        switch targets {
        case .none: return false
        case .allLinear: return true  // the caller restricts to linear layers
        case .regex(let pattern): return Self.wholeMatch(pattern, key)
        case .names(let names, let layers, let layersPattern):
            if names.contains(key) { return true }
            guard names.contains(where: { key.hasSuffix(".\($0)") }) else { return false }
            guard let layers else { return true }
            // The first numbered segment is the layer index (lazy match, as peft's).
            var index: Int? = nil
            let patterns = layersPattern.isEmpty ? ["[^.]*"] : layersPattern
            for pattern in patterns {
                let anchor = layersPattern.isEmpty ? ".*?\\." : "(?:.*?\\.)?"
                guard let regex = try? LinearRegex("\(anchor)(?:\(pattern))\\.(\\d+)\\.", syntax: .python, captures: true),
                      let groups = regex.prefixMatch(key), groups.count > 1, let captured = groups[1] else { continue }
                let scalars = Array(key.unicodeScalars)[captured]
                index = Int(String(String.UnicodeScalarView(scalars)))
                break
            }
            guard let index else { return false }
            return layers.contains(index)
        }
    }

    /// peft's `get_pattern_key`: the pattern keys that match `key` at a dot boundary.
    private static func patternValue<V: Equatable>(_ patterns: [String: V], key: String, what: String, source: String) throws -> V? {
        let matches = patterns.filter { wholeMatch("(.*\\.)?(\($0.key))", key) }.sorted { $0.key < $1.key }
        guard let first = matches.first else { return nil }
        if let other = matches.dropFirst().first(where: { $0.value != first.value }) {
            throw IRMError("\(source): \(what): expected at most one pattern to match module \(key), found \"\(first.key)\" and \"\(other.key)\" with different values; peft takes the first in file order, which irm does not keep")
        }
        return first.value
    }

    func resolvedRank(_ module: String) throws -> Int {
        try Self.patternValue(rankPattern, key: module, what: "rank_pattern", source: configPath) ?? rank
    }

    func resolvedAlpha(_ module: String) throws -> Double {
        try Self.patternValue(alphaPattern, key: module, what: "alpha_pattern", source: configPath) ?? alpha
    }
}

// MARK: - Merging

extension LoRAAdapter {
    /// The base model an adapter is merged into, for checks and messages.
    public struct Base: Sendable {
        /// A model directory or a checkpoint file.
        public var location: String
        public var architecture: Architecture
        public var kind: CheckpointKind
        public var tiedEmbeddings: Bool
        /// Every base tensor under its irm (canonical Hugging Face) name, with its shape.
        public var shapes: [String: [Int]]
        /// Names the base is known by (config `_name_or_path`, provenance `source_model`).
        public var names: [String]

        public init(location: String, architecture: Architecture, kind: CheckpointKind, tiedEmbeddings: Bool,
                    shapes: [String: [Int]], names: [String]) {
            self.location = location
            self.architecture = architecture
            self.kind = kind
            self.tiedEmbeddings = tiedEmbeddings
            self.shapes = shapes
            self.names = names
        }
    }

    /// An adapter checked against one base: which base tensors change, and how.
    public struct Merge: Sendable {
        public let adapter: LoRAAdapter
        /// The base tensors that the merge changes, by irm name, sorted.
        public let changedTensors: [String]
        /// Things worth telling the user that do not stop the merge (a different base name, a task
        /// type that does not fit the base).
        public let warnings: [String]
        fileprivate let deltas: [String: Delta]
        fileprivate let biasDeltas: [String: Delta]
        fileprivate let replacements: [String: WholeTensor]

        /// The merged values of base tensor `name`, rounded to `storage`. `values` are the base's,
        /// widened to Float, row-major in `shape`.
        public func merged(_ name: String, values: [Float], shape: [Int], storage: TensorDType) throws -> [Float] {
            let count = shape.reduce(1, *)
            guard values.count == count else {
                throw IRMError("\(adapter.directory): base tensor \(name): expected \(count) values for shape \(shape), found \(values.count)")
            }
            var sum = (replacements[name]?.values ?? values).map(Double.init)
            if let delta = deltas[name] {
                let pair = delta.pair
                let (out, r) = (pair.shapeB[0], pair.shapeB[1])
                let inFeatures = pair.shapeA[1]
                guard out * inFeatures == count else {
                    throw IRMError("\(adapter.weightsPath): tensor \(pair.keyB): expected a delta of \(count) values for \(name) \(shape), found \(out)×\(inFeatures)")
                }
                let a = pair.a.map(Double.init), b = pair.b.map(Double.init)
                // W[out, in] += s·B·A, or, transposed storage, W[in, out] += s·Aᵀ·Bᵀ.
                ComputeThreads.requireSingleThreadedBLAS()
                if delta.transposed {
                    cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(inFeatures), Int32(out), Int32(r),
                                delta.scale, a, Int32(inFeatures), b, Int32(r), 1, &sum, Int32(out))
                } else {
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(out), Int32(inFeatures), Int32(r),
                                delta.scale, b, Int32(r), a, Int32(inFeatures), 1, &sum, Int32(inFeatures))
                }
            }
            if let delta = biasDeltas[name], let bias = delta.pair.bias {
                guard bias.count == count else {
                    throw IRMError("\(adapter.weightsPath): tensor \(delta.pair.biasKey ?? name): expected \(count) values for \(name), found \(bias.count)")
                }
                for i in sum.indices { sum[i] += delta.scale * Double(bias[i]) }
            }
            var result = [Float](repeating: 0, count: sum.count)
            for i in sum.indices {
                let single = Float(sum[i])
                let stored: Float = switch storage {
                case .f32, .f64: single
                case .f16: Float(Float16(single))
                case .bf16: BFloat16(single).floatValue
                }
                guard stored.isFinite else {
                    throw IRMError("\(adapter.directory): merged tensor \(name): expected finite values in \(storage.rawValue), found \(sum[i]) at \(FiniteValues.multiIndex(i, shape: shape))\(storage == .f16 && sum[i].isFinite ? ", beyond float16's range (±65504)" : "")")
                }
                result[i] = stored
            }
            return result
        }
    }

    fileprivate struct Delta: Sendable {
        let pair: LowRankPair
        let scale: Double
        let transposed: Bool
    }

    /// Checks the adapter against `base` and plans the merge. Every adapter tensor must land on a
    /// base tensor of the right shape, every module the config targets must have weights, and
    /// every rank must agree with `r` / `rank_pattern`.
    public func merge(into base: Base) throws -> Merge {
        let weights = weightsPath
        let backbone = TensorLayout.backbonePrefix(base.architecture)
        let canonical = { (path: String) in TensorLayout.canonicalName(path, architecture: base.architecture) }
        // peft names modules as the trained class did: `model.layers.0…` for a *ForCausalLM, or
        // without the backbone prefix for a bare base model; irm's names always carry it.
        let stripsBackbone = pairs.keys.contains { !$0.hasPrefix(backbone) && canonical($0 + ".weight") != $0 + ".weight" }
        func peftPath(_ canonicalModule: String) -> String {
            stripsBackbone && canonicalModule.hasPrefix(backbone) ? String(canonicalModule.dropFirst(backbone.count)) : canonicalModule
        }
        let embeddingModules: Set<String> = {
            var set: Set<String> = [String(TensorLayout.inputEmbeddingName(base.architecture).dropLast(".weight".count))]
            set.formUnion(base.architecture.definition.otherEmbeddingModules)
            return set
        }()
        let headModules: Set<String> = [String(TensorLayout.outputHeadName(base.architecture).dropLast(".weight".count)), "score"]
        func isConv1D(_ module: String) -> Bool {
            base.architecture.definition.conv1DModuleSuffixes.contains { module.hasSuffix($0) }
        }
        func missing(_ key: String, _ name: String) -> IRMError {
            var hint = ""
            if name == "score.weight" {
                hint = "; the adapter trains a score head (task_type \(taskType ?? "SEQ_CLS")): convert the base as the sequence-classification model it was trained from"
            } else if name == TensorLayout.outputHeadName(base.architecture), base.tiedEmbeddings {
                hint = "; the base ties its output head to the input embedding (tie_word_embeddings), and irm does not untie it"
            }
            return IRMError("\(weights): tensor \(key): expected a base tensor \(name) in \(base.location), found none\(hint) (was the adapter trained on \(baseModelName.map { "\"\($0)\"" } ?? "another base")?)")
        }
        func mismatch(_ key: String, expected: [Int], found: [Int], baseName: String, baseShape: [Int]) -> IRMError {
            IRMError("\(weights): tensor \(key): expected \(expected) to fit \(baseName) \(baseShape) of \(base.location), found \(found); the adapter in \(directory) was trained on a base of another shape\(baseModelName.map { " (base_model_name_or_path = \"\($0)\")" } ?? "")")
        }

        var deltas: [String: Delta] = [:]
        var biasDeltas: [String: Delta] = [:]
        for (module, pair) in pairs.sorted(by: { $0.key < $1.key }) {
            let weightName = canonical(module + ".weight")
            let canonicalModule = String(weightName.dropLast(".weight".count))
            guard let baseShape = base.shapes[weightName] else { throw missing(pair.keyA, weightName) }
            guard isTargeted(module), !(targets.isAllLinear && (embeddingModules.contains(canonicalModule) || headModules.contains(canonicalModule))) else {
                throw IRMError("\(weights): tensor \(pair.keyA): expected only modules that adapter_config.json targets (\(targets.description)), found \(module)")
            }
            let isEmbedding = embeddingModules.contains(canonicalModule)
            guard isEmbedding == pair.isEmbedding else {
                throw IRMError("\(weights): tensor \(pair.keyA): expected \(isEmbedding ? "lora_embedding_A/B on the embedding" : "lora_A/lora_B on a linear layer") \(module), found \(pair.isEmbedding ? "lora_embedding_A/B" : "lora_A/lora_B")")
            }
            guard baseShape.count == 2 else { throw mismatch(pair.keyA, expected: [pair.rank, -1], found: pair.shapeA, baseName: weightName, baseShape: baseShape) }
            let transposed = isEmbedding || isConv1D(canonicalModule)
            let (outFeatures, inFeatures) = transposed ? (baseShape[1], baseShape[0]) : (baseShape[0], baseShape[1])
            let r = try resolvedRank(module)
            if pair.shapeA != [r, inFeatures] {
                if pair.shapeA[1] != inFeatures {
                    throw mismatch(pair.keyA, expected: [r, inFeatures], found: pair.shapeA, baseName: weightName, baseShape: baseShape)
                }
                throw IRMError("\(configPath): r: expected rank \(pair.rank) for \(module) as \(pair.keyA) \(pair.shapeA) has it, found \(r) from \(rankPattern.isEmpty ? "r" : "r and rank_pattern")")
            }
            if pair.shapeB != [outFeatures, r] {
                throw mismatch(pair.keyB, expected: [outFeatures, r], found: pair.shapeB, baseName: weightName, baseShape: baseShape)
            }
            let alpha = try resolvedAlpha(module)
            let scale = usesRSLoRA ? alpha / Double(r).squareRoot() : alpha / Double(r)
            deltas[weightName] = Delta(pair: pair, scale: scale, transposed: transposed)
            if let biasKey = pair.biasKey {
                let biasName = canonicalModule + ".bias"
                guard base.shapes[biasName] == [outFeatures] else {
                    throw IRMError("\(weights): tensor \(biasKey): expected a base bias \(biasName) [\(outFeatures)] in \(base.location) to add it to, found \(base.shapes[biasName].map { "\($0)" } ?? "none") (peft cannot merge lora_bias without one either)")
                }
                biasDeltas[biasName] = Delta(pair: pair, scale: scale, transposed: false)
            }
        }

        // Every targeted module must have weights; a missing pair means a truncated or edited file.
        for (name, shape) in base.shapes.sorted(by: { $0.key < $1.key }) where name.hasSuffix(".weight") && shape.count == 2 {
            let module = String(name.dropLast(".weight".count))
            if deltas[name] != nil { continue }
            if targets.isAllLinear {
                if embeddingModules.contains(module) || headModules.contains(module) { continue }
            } else if !isTargeted(peftPath(module)) {
                continue
            }
            if modulesToSave.contains(where: { Self.wholeMatch("(.*\\.)?(\($0))(\\..*)?", peftPath(module)) }) { continue }
            throw IRMError("\(weights): expected lora_A/lora_B for \(peftPath(module)), which adapter_config.json targets (\(targets.description)), found none (a truncated or edited adapter?)")
        }

        var replacements: [String: WholeTensor] = [:]
        for (path, tensor) in wholeTensors.sorted(by: { $0.key < $1.key }) {
            let name = canonical(path)
            guard let baseShape = base.shapes[name] else { throw missing(tensor.key, name) }
            guard baseShape == tensor.shape else {
                throw mismatch(tensor.key, expected: baseShape, found: tensor.shape, baseName: name, baseShape: baseShape)
            }
            if tensor.origin == .bias, bias == "lora_only" {
                let module = String(name.dropLast(".bias".count))
                guard deltas[module + ".weight"] != nil else {
                    throw IRMError("\(weights): tensor \(tensor.key): expected trained biases only on LoRA modules (bias = \"lora_only\"), found one on \(module)")
                }
            }
            replacements[name] = tensor
        }

        var warnings: [String] = []
        if let expected = baseModelName, !Self.namesAgree(expected, base: base) {
            warnings.append("\(configPath): base_model_name_or_path: expected the base \(base.location)\(base.names.isEmpty ? "" : " (\(base.names.joined(separator: ", ")))"), found \"\(expected)\"; merging anyway, since every tensor shape fits")
        }
        switch (taskType?.uppercased(), base.kind) {
        case ("SEQ_CLS"?, .policy):
            warnings.append("\(configPath): task_type: expected CAUSAL_LM for the policy \(base.location), found SEQ_CLS")
        case ("CAUSAL_LM"?, .rewardModel):
            warnings.append("\(configPath): task_type: expected SEQ_CLS for the reward model \(base.location), found CAUSAL_LM")
        default: break
        }
        let changed = Set(deltas.keys).union(biasDeltas.keys).union(replacements.keys).sorted()
        return Merge(adapter: self, changedTensors: changed, warnings: warnings, deltas: deltas, biasDeltas: biasDeltas, replacements: replacements)
    }

    /// Whether `base_model_name_or_path` plausibly names `base`: equal, or the same last path
    /// component as the base's location or one of its names.
    static func namesAgree(_ expected: String, base: Base) -> Bool {
        func last(_ s: String) -> String {
            let trimmed = s.hasSuffix("/") ? String(s.dropLast()) : s
            return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
        }
        var candidates = base.names + [base.location]
        if base.location.hasSuffix(".h5") { candidates.append(String(last(base.location).dropLast(3))) }
        return candidates.contains { $0 == expected || last($0) == last(expected) }
    }
}

extension LoRAAdapter.TargetRule {
    var isAllLinear: Bool { if case .allLinear = self { true } else { false } }

    var description: String {
        switch self {
        case .names(let names, let layers, _):
            "target_modules \(names.sorted())\(layers.map { ", layers_to_transform \($0)" } ?? "")"
        case .regex(let pattern): "target_modules \"\(pattern)\""
        case .allLinear: "target_modules \"all-linear\""
        case .none: "no target_modules"
        }
    }
}

// MARK: - Merging into a loaded checkpoint

extension LoRAAdapter {
    /// Every tensor of `checkpoint` (or, with `onlyChanged`, those the adapter changes), with the
    /// adapter merged (each changed tensor rounded to its stored type), and the merge that made them.
    public func mergedTensors(of checkpoint: Checkpoint, onlyChanged: Bool = false) throws -> (tensors: [String: CheckpointTensor], merge: Merge) {
        let base = Base(location: checkpoint.path, architecture: checkpoint.architecture, kind: checkpoint.kind,
                        tiedEmbeddings: checkpoint.config.tiedEmbeddings,
                        shapes: Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0.shape) }),
                        names: [checkpoint.config.json["_name_or_path"]?.stringValue, checkpoint.provenance.sourceModel].compactMap { $0 }.filter { !$0.isEmpty })
        let plan = try merge(into: base)
        var tensors: [String: CheckpointTensor] = [:]
        if onlyChanged {
            for name in plan.changedTensors where checkpoint.tensors.contains(where: { $0.name == name }) {
                tensors[name] = try checkpoint.loadTensor(name)
            }
        } else {
            tensors = try checkpoint.loadAllTensors()
        }
        let storage = Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0.dtype) })
        for name in plan.changedTensors {
            guard let tensor = tensors[name] else { continue }
            let values = try plan.merged(name, values: tensor.values, shape: tensor.shape, storage: storage[name] ?? .f32)
            tensors[name] = CheckpointTensor(name: name, shape: tensor.shape, values: values)
        }
        return (tensors, plan)
    }
}
