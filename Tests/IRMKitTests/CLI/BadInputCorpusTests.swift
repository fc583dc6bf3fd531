import Foundation
import XCTest
@testable import IRMKit

/// The bad-input corpus of issue 14: every case is a file (or option) that a stranger could hand
/// irm, made here from the bundled tiny checkpoint and small data by one mutation each. For every
/// case, run through the real `irm` binary twice (once with a fresh output path, once with an
/// output that already exists):
/// - the exit status is 1 (an error, not a signal);
/// - stderr is exactly one line, `irm: error: …`, naming the file (and the object inside it, where
///   there is one) and containing the case's fragments;
/// - no output is created, and an existing output is left byte for byte as it was.
final class BadInputCorpusTests: XCTestCase {
    /// One bad input: the command's arguments with `OUT` standing for the output path, and the
    /// fragments the error line must contain (`WORK` stands for the case's directory).
    struct Case {
        let name: String
        let arguments: [String]
        let fragments: [String]
        /// The output is a directory (analyze, drift) rather than a file.
        var directoryOutput = false
    }

    var work: URL!
    let tiny = Fixtures.repositoryPath("checkpoints/tiny/pythia-tiny.h5")

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    // MARK: Making inputs

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: work.appendingPathComponent(name))
        return path(name)
    }

    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        try Data(bytes).write(to: work.appendingPathComponent(name))
        return path(name)
    }

    /// The tiny checkpoint rewritten with edits: to its config JSON, its tokenizer JSON, its
    /// tensors (drop one by returning nil) or its provenance.
    func variant(_ name: String, config: ((inout [String: JSONValue]) -> Void)? = nil, configText: String? = nil,
                 tokenizerText: String? = nil, tensors: ((CheckpointTensor) -> CheckpointTensor?)? = nil,
                 provenance: Provenance? = nil) throws -> String {
        let source = try Checkpoint.open(path: tiny)
        var object = source.config.json.objectValue ?? [:]
        config?(&object)
        let configJSON = configText ?? JSONValue.object(object).serialized()
        let destination = work.appendingPathComponent(name)
        let writer = try CheckpointWriter(destination: destination, architecture: source.architecture, kind: source.kind,
                                          configJSON: configJSON, tokenizerJSON: tokenizerText ?? source.tokenizerJSON,
                                          tokenizerConfigJSON: source.tokenizerConfigJSON, provenance: provenance ?? source.provenance)
        for info in source.tensors {
            let tensor = try source.loadTensor(info.name)
            guard let edited = tensors?(tensor) ?? (tensors == nil ? tensor : nil) else { continue }
            try writer.addTensor(name: edited.name, shape: edited.shape, values: edited.values, dtype: .f32)
        }
        try writer.finish()
        return destination.path
    }

    func replacingValue(in name: String, at index: Int, with value: Float) -> (CheckpointTensor) -> CheckpointTensor? {
        { tensor in
            guard tensor.name == name else { return tensor }
            var values = tensor.values
            values[index] = value
            return CheckpointTensor(name: tensor.name, shape: tensor.shape, values: values)
        }
    }

    /// A copy of a Hugging Face fixture directory, edited.
    func modelDirectory(_ name: String, from fixture: String = "hf/neox", edit: (URL) throws -> Void) throws -> String {
        let copy = work.appendingPathComponent(name)
        try FileManager.default.copyItem(at: Fixtures.url(fixture), to: copy)
        try edit(copy)
        return copy.path
    }

    func safetensors(_ header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let length = headerLength ?? UInt64(headerBytes.count)
        return (0..<8).map { UInt8((length >> (8 * UInt64($0))) & 0xFF) } + headerBytes + data
    }

    let data = Fixtures.path("analysis/pairs.jsonl")

    func score(_ model: String, data: String? = nil, extra: [String] = []) -> [String] {
        ["score", "--model", model, "--data", data ?? self.data, "--out", "OUT"] + extra
    }

    // MARK: The corpus

    func corpus() throws -> [Case] {
        var cases: [Case] = []
        func add(_ name: String, _ arguments: [String], _ fragments: [String], directory: Bool = false) {
            cases.append(Case(name: name, arguments: arguments, fragments: fragments, directoryOutput: directory))
        }

        // Checkpoint files that are not checkpoints.
        let empty = try write("empty.h5", "")
        add("empty checkpoint", score(empty), [empty])
        let text = try write("text.h5", "this is not HDF5\n")
        add("text as a checkpoint", score(text), [text, "not an HDF5 file"])
        let tinyBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tiny)))
        let truncated = try write("truncated.h5", bytes: Array(tinyBytes.prefix(tinyBytes.count / 2)))
        add("truncated checkpoint", score(truncated), [truncated, "truncated"])
        let header = try write("header-only.h5", bytes: Array(tinyBytes.prefix(2048)))
        add("only the HDF5 header", score(header), [header])
        add("a directory as the model", score(work.path), [work.path, "directory"])
        let missing = path("missing.h5")
        add("a missing model", score(missing), [missing])
        let fifo = path("model.fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        add("a FIFO as the model", score(fifo), [fifo, "FIFO"])
        add("a FIFO as the data", score(tiny, data: fifo), [fifo, "FIFO"])
        add("a character device as the model", score("/dev/zero"), ["/dev/zero"])

        // Root attributes and storage.
        for file in ["external.h5", "external-link.h5", "soft-link.h5", "lzf.h5"] {
            let fixture = Fixtures.path("checkpoints/storage/\(file)")
            add("storage: \(file)", score(fixture), [fixture, "/tensors/transformer.h.0.mlp.c_fc.weight"])
        }

        // Inputs the checkpoint fuzzer found (scripts/fuzz/), each of which crashed or hung libhdf5.
        for (file, object) in [("checkpoint-H5HG_read-overlap.h5", "/: attribute 'irm_format'"), ("checkpoint-H5HG-hang.h5", "/: attribute 'irm_format'"),
                               ("checkpoint-H5HG_read-dataset.h5", "/config"), ("checkpoint-chunk-dims-overread.h5", "/tensors/transformer.h.0.attn.c_attn.weight"),
                               ("checkpoint-dataspace-overflow.h5", "/tensors/transformer.wte.weight"), ("checkpoint-duplicate-tensor-link.h5", "/tensors"),
                               ("checkpoint-H5O-attribute-use-after-free.h5", "/: attribute 3: its name"),
                               ("checkpoint-H5O-attribute-overread.h5", "/provenance: attribute 1: its name"),
                               ("checkpoint-H5A-vlen-width-overread.h5", "/: attribute 'architecture'"),
                               ("checkpoint-H5D-layout-chunk-dims.h5", "/config: its layout message")] {
            let fixture = Fixtures.path("fuzz/\(file)")
            add("fuzz: \(file)", score(fixture), [fixture, object, "corrupt"])
        }
        // Chunks that libhdf5 would copy past or fill silently, in a dataset read as a tensor.
        for (dataset, fragment) in [("deflate_short", "decodes to 1000 bytes"), ("chunk_never_written", "was never written")] {
            let fixture = Fixtures.path("hdf5/checkpoint-\(dataset).h5")
            add("chunks: \(dataset)", score(fixture, extra: ["--eos", "never"]), [fixture, "/tensors/transformer.h.0.mlp.c_fc.weight", fragment])
        }

        // Config values (issue 14, item 1), each through the config reader's bounds.
        let configEdits: [(String, (inout [String: JSONValue]) -> Void, String)] = [
            ("partial_rotary_factor above 1", { $0["rope_parameters"] = .object(["partial_rotary_factor": .double(2), "rope_theta": .double(10000), "rope_type": .string("default")]) }, "partial_rotary_factor"),
            ("rotary_pct 1e300 (Pythia style)", { $0["rope_parameters"] = nil; $0["rotary_pct"] = .double(1e300) }, "rotary_pct"),
            ("rotary_pct negative (Pythia style)", { $0["rope_parameters"] = nil; $0["rotary_pct"] = .double(-0.5) }, "rotary_pct"),
            ("hidden_size negative", { $0["hidden_size"] = .double(-48) }, "hidden_size"),
            ("hidden_size 3e18", { $0["hidden_size"] = .double(3e18) }, "hidden_size"),
            ("hidden_size a string", { $0["hidden_size"] = .string("48") }, "hidden_size"),
            ("heads that do not divide the hidden size", { $0["num_attention_heads"] = .double(5) }, "num_attention_heads"),
            ("num_attention_heads 2^62", { $0["num_attention_heads"] = .double(4.611686018427388e18) }, "num_attention_heads"),
            ("num_hidden_layers 1e9", { $0["num_hidden_layers"] = .double(1e9) }, "num_hidden_layers"),
            ("layer_norm_eps negative", { $0["layer_norm_eps"] = .double(-1e-5) }, "layer_norm_eps"),
            ("rope_theta 0", { $0["rope_parameters"] = .object(["partial_rotary_factor": .double(0.25), "rope_theta": .double(0), "rope_type": .string("default")]) }, "rope_theta"),
            ("rotary_emb_base 0 (Pythia style)", { $0["rope_parameters"] = nil; $0["rotary_emb_base"] = .double(0) }, "rotary_emb_base"),
            ("vocab_size beyond the embedding", { $0["vocab_size"] = .double(100_000) }, "embed_out.weight"),
            ("intermediate_size 0", { $0["intermediate_size"] = .double(0) }, "intermediate_size"),
            ("max_position_embeddings negative", { $0["max_position_embeddings"] = .double(-1) }, "max_position_embeddings"),
            ("model_type unknown", { $0["model_type"] = .string("mamba") }, "mamba"),
        ]
        for (index, (label, edit, fragment)) in configEdits.enumerated() {
            let file = try variant("config-\(index).h5", config: edit)
            add("config: \(label)", score(file), [file, fragment])
        }
        let notJSON = try variant("config-not-json.h5", configText: "{\"model_type\": \"gpt_neox\",")
        add("config: not JSON", score(notJSON), [notJSON, "/config"])
        let bomConfig = try variant("config-bom.h5", configText: "\u{FEFF}" + (try Checkpoint.open(path: tiny)).config.json.serialized())
        add("config: a byte-order mark", score(bomConfig), [bomConfig, "byte-order mark"])

        // Tensors.
        let dropped = try variant("missing-tensor.h5", tensors: { $0.name == "gpt_neox.layers.1.mlp.dense_4h_to_h.weight" ? nil : $0 })
        add("a missing tensor", score(dropped), [dropped, "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"])
        let misshaped = try variant("misshaped-tensor.h5", tensors: { tensor in
            tensor.name == "gpt_neox.final_layer_norm.weight"
                ? CheckpointTensor(name: tensor.name, shape: [tensor.values.count - 1], values: Array(tensor.values.dropLast())) : tensor
        })
        add("a misshaped tensor", score(misshaped), [misshaped, "gpt_neox.final_layer_norm.weight"])
        let nan = try variant("nan.h5", tensors: replacingValue(in: "gpt_neox.layers.0.attention.dense.weight", at: 7, with: .nan))
        add("a NaN weight", score(nan), [nan, "gpt_neox.layers.0.attention.dense.weight", "finite"])
        let inf = try variant("inf.h5", tensors: replacingValue(in: "embed_out.weight", at: 0, with: .infinity))
        add("an infinite weight", score(inf), [inf, "embed_out.weight", "finite"])
        let extra = try variant("unexpected-only.h5", tensors: { $0.name.hasPrefix("gpt_neox.layers.1.") ? nil : $0 })
        add("a layer missing", score(extra), [extra, "gpt_neox.layers.1."])

        // Provenance.
        let betaFile = try variant("beta-string.h5", provenance: { var p = Provenance(); p.beta = 1; return p }())
        // irm writes β as a number; patch the attribute into a string with libhdf5.
        do {
            let file = try HDF5File.open(betaFile, mode: .readWrite)
            try file.root().group(CheckpointFormat.provenanceGroup).setAttribute(Provenance.betaAttribute, .string("0.1"))
            try file.flush()
        }
        add("provenance: β stored as a string", ["analyze", "--before", tiny, "--after", betaFile, "--data", data, "--out", "OUT"],
            [betaFile, "/provenance", "beta"], directory: true)

        // Root attributes.
        let rootEdits: [(String, String, HDF5AttributeValue, String)] = [
            ("format version 2", CheckpointFormat.versionAttribute, .int(2), "version"),
            ("unknown architecture", CheckpointFormat.architectureAttribute, .string("rwkv"), "rwkv"),
            ("unknown kind", CheckpointFormat.kindAttribute, .string("value-head"), "value-head"),
            ("another format", CheckpointFormat.formatAttribute, .string("safetensors"), "safetensors"),
            ("format version a string", CheckpointFormat.versionAttribute, .string("1"), "version"),
        ]
        for (index, (label, name, value, fragment)) in rootEdits.enumerated() {
            let file = path("root-\(index).h5")
            try FileManager.default.copyItem(atPath: tiny, toPath: file)
            let handle = try HDF5File.open(file, mode: .readWrite)
            try handle.root().setAttribute(name, value)
            try handle.flush()
            add("root: \(label)", score(file), [file, fragment])
        }

        // Tokenizers inside checkpoints.
        let tokenizer = try Checkpoint.open(path: tiny).tokenizerJSON
        let badTokenizers: [(String, String, String)] = [
            ("not JSON", "{\"model\": ", "tokenizer.json"),
            ("a WordPiece model", tokenizer.replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"WordPiece\"")
                .replacingOccurrences(of: "\"type\":\"BPE\"", with: "\"type\":\"WordPiece\""), "WordPiece"),
            ("a backreference in a Split pattern", "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                + "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a)\\\\1\"},\"behavior\":\"Isolated\",\"invert\":false}}", "tokenizer.json"),
            ("no model", "{\"version\":\"1.0\"}", "model"),
        ]
        for (index, (label, text, fragment)) in badTokenizers.enumerated() {
            let file = try variant("tokenizer-\(index).h5", tokenizerText: text)
            add("tokenizer: \(label)", score(file), [file, fragment])
        }

        // Data files.
        let dataCases: [(String, String, String)] = [
            ("not JSON", "{\"prompt\": \"a\", \n", "line 1"),
            ("no response", "{\"prompt\": \"hello\"}\n", "response"),
            ("a number as the prompt", "{\"prompt\": 3, \"response\": \"x\"}\n", "prompt"),
            ("token ids outside the vocabulary", "{\"prompt_ids\": [1, 2], \"response_ids\": [99999]}\n", "99999"),
            ("a negative token id", "{\"prompt_ids\": [1, -2], \"response_ids\": [3]}\n", "-2"),
            ("control bytes in a value", "{\"prompt\": \"\u{1B}[31m\", \"response\": 5}\n", "line 1"),
            ("an empty file", "", "data"),
            ("a JSON array cut short", "[{\"prompt\": \"a\", \"response\": \"b\"},", "data"),
            ("CSV without a response column", "prompt,answer\nhello,world\n", "response"),
            ("chosen without rejected", "{\"prompt\": \"a\", \"chosen\": \"b\"}\n", "rejected"),
        ]
        for (index, (label, content, fragment)) in dataCases.enumerated() {
            let file = try write("data-\(index)" + (content.hasPrefix("prompt,") ? ".csv" : content.hasPrefix("[") ? ".json" : ".jsonl"), content)
            add("data: \(label)", score(tiny, data: file), [file, fragment])
        }

        // Features files.
        let features: [(String, String, String)] = [
            ("YAML that does not parse", "features:\n  - name: [unclosed\n", "features"),
            ("a backreference", "features:\n  - name: twice\n    regex: \"(a)\\\\1\"\n", "twice"),
            ("an unknown key", "builtins: [no_such_feature]\n", "\"builtins\""),
            ("a JSON features file with a BOM", "\u{FEFF}{\"features\": []}", "byte-order mark"),
        ]
        for (index, (label, content, fragment)) in features.enumerated() {
            let file = try write("features-\(index)" + (content.hasPrefix("\u{FEFF}") ? ".json" : ".yaml"), content)
            add("features: \(label)", ["analyze", "--before", tiny, "--after", tiny, "--data", data, "--features", file, "--out", "OUT"],
                [file, fragment], directory: true)
        }

        // Options.
        add("--beta nan", ["analyze", "--before", tiny, "--after", tiny, "--data", data, "--beta", "nan", "--out", "OUT"], ["beta"], directory: true)
        add("--beta 0", ["analyze", "--before", tiny, "--after", tiny, "--data", data, "--beta", "0", "--out", "OUT"], ["beta"], directory: true)
        add("--out under /proc", ["score", "--model", tiny, "--data", data, "--out", "/proc/irm-test/out.jsonl"], ["/proc/irm-test"])
        add("--out in a missing directory", ["score", "--model", tiny, "--data", data, "--out", path("no/such/dir/out.jsonl")], [path("no/such/dir")])
        add("--chat-template that does not parse", score(tiny, data: try write("chat.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"yo\"}]}\n"),
                                                         extra: ["--chat-template", try write("bad.jinja", "{% for m in messages %}{{ m.content }")]), ["bad.jinja"])

        // Drift series.
        add("drift with one checkpoint", ["drift", "--base", tiny, "--checkpoint", tiny, "--data", data, "--out", "OUT"], ["checkpoint"], directory: true)

        // Hugging Face directories for convert.
        let noConfig = try modelDirectory("hf-no-config") { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) }
        add("convert: no config.json", ["convert", noConfig, "OUT"], ["config.json"])
        let bomHF = try modelDirectory("hf-bom-config") { dir in
            let url = dir.appendingPathComponent("config.json")
            try (Data([0xEF, 0xBB, 0xBF]) + Data(contentsOf: url)).write(to: url)
        }
        add("convert: config.json with a BOM", ["convert", bomHF, "OUT"], ["config.json", "byte-order mark"])
        let headerLength = try modelDirectory("hf-huge-header") { dir in
            try Data(safetensors("{}", headerLength: 1 << 40)).write(to: dir.appendingPathComponent("model.safetensors"))
        }
        add("convert: a safetensors header length of 2^40", ["convert", headerLength, "OUT"], ["model.safetensors"])
        let headerText = try modelDirectory("hf-header-text") { dir in
            try Data(safetensors("{\"a\": ")).write(to: dir.appendingPathComponent("model.safetensors"))
        }
        add("convert: a safetensors header that is not JSON", ["convert", headerText, "OUT"], ["model.safetensors"])
        let cut = try modelDirectory("hf-cut") { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            let bytes = try Data(contentsOf: url)
            try bytes.prefix(bytes.count / 2).write(to: url)
        }
        add("convert: a safetensors file cut in half", ["convert", cut, "OUT"], ["model.safetensors"])
        let offsets = try modelDirectory("hf-offsets") { dir in
            try Data(safetensors("{\"gpt_neox.embed_in.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", data: [0, 0]))
                .write(to: dir.appendingPathComponent("model.safetensors"))
        }
        add("convert: data offsets past the end", ["convert", offsets, "OUT"], ["gpt_neox.embed_in.weight"])
        add("convert: --beta nan", ["convert", Fixtures.path("hf/neox"), "OUT", "--beta", "nan"], ["beta"])
        let adapter = work.appendingPathComponent("adapter-empty")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        add("convert: an adapter directory without adapter_config.json", ["convert", Fixtures.path("hf/neox"), "OUT", "--adapter", adapter.path],
            ["adapter_config.json"])
        return cases
    }

    // MARK: Running

    func testEveryBadInputIsOneErrorLineWithStatusOneAndLeavesOutputsAlone() throws {
        let cases = try corpus()
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        for (index, testCase) in cases.enumerated() {
            for existing in [false, true] {
                let out = path("out-\(index)-\(existing ? "existing" : "fresh")" + (testCase.directoryOutput ? "" : ".out"))
                var sentinel: Data? = nil
                if existing {
                    sentinel = Data("an earlier result \(index)\n".utf8)
                    if testCase.directoryOutput {
                        // An earlier irm output (its manifest says so), which a successful run would replace.
                        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                        try sentinel!.write(to: URL(fileURLWithPath: out + "/report.md"))
                        try Data("{\"tool\": \"irm\"}\n".utf8).write(to: URL(fileURLWithPath: out + "/manifest.json"))
                    } else {
                        try sentinel!.write(to: URL(fileURLWithPath: out))
                    }
                }
                let arguments = testCase.arguments.map { $0 == "OUT" ? out : $0 }
                let run = try CommandRunner.run(arguments, timeout: 60)
                let label = "\(testCase.name) (\(existing ? "existing output" : "fresh output"))"
                XCTAssertEqual(run.status, 1, "\(label): exit status; stderr: \(run.stderr)")
                let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: true)
                XCTAssertEqual(lines.count, 1, "\(label): one line on stderr, got: \(run.stderr)")
                let line = String(lines.first ?? "")
                XCTAssertTrue(line.hasPrefix("irm: error: "), "\(label): \(line)")
                XCTAssertFalse(line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "\(label): control characters in «\(line)»")
                for fragment in testCase.fragments {
                    XCTAssertTrue(line.contains(fragment), "\(label): «\(line)» should name «\(fragment)»")
                }
                if let sentinel {
                    let kept = testCase.directoryOutput ? out + "/report.md" : out
                    XCTAssertEqual(FileManager.default.contents(atPath: kept), sentinel, "\(label): the existing output is unchanged")
                    if testCase.directoryOutput {
                        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), ["manifest.json", "report.md"], "\(label): nothing added")
                    }
                } else {
                    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(label): no output created")
                }
            }
        }
        // No temporary file of irm's is left in the work directory.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }
}
