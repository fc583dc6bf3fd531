import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import IRMKit

/// Layer divergence (how much each weight moved) against numpy on the bundled demo series and on a
/// resized vocabulary (scripts/fixtures/make_layer_divergence_fixture.py), the tensor-name grouping
/// of every architecture, the refusals, and the CSV and heatmap writers.
final class LayerDivergenceTests: XCTestCase {
    struct Fixture: Decodable {
        let demo: Demo
        let resized: Resized
        struct Demo: Decodable {
            let directory: String
            let base: String
            let steps: [Step]
            let comparisons: [Comparison]
        }
        struct Step: Decodable {
            let label: String
            let step: Int
        }
        struct Resized: Decodable {
            let beforeDir: String
            let afterDir: String
            let tensors: [Tensor]
            let groups: [Group]
            let mostChangedBlocks: [String]
        }
        struct Comparison: Decodable {
            let label: String
            let step: Int
            let comparison: String
            let referenceLabel: String
            let tensors: [Tensor]
            let groups: [Group]
            let mostChangedBlocks: [String]
        }
        struct Tensor: Decodable {
            let tensor: String
            let group: String
            let absolute: Double
            let relative: Double?
            let baseNorm: Double
            let sharedRows: Int?
        }
        struct Group: Decodable {
            let group: String
            let layer: Int?
            let tensorCount: Int
            let absolute: Double
            let relative: Double?
            let baseNorm: Double
        }
    }

    /// float64 numpy against Double accumulation over the same float16 values: only the order of
    /// summation differs.
    static let tolerance = 1e-6

    func fixture() throws -> Fixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Fixture.self, from: Data(contentsOf: Fixtures.url("analysis/layer-divergence.json")))
    }

    func demoDivergence(_ demo: Fixture.Demo) throws -> LayerDivergence {
        let directory = Fixtures.repositoryPath(demo.directory)
        let base = try LayerDivergence.Input.open(path: "\(directory)/\(demo.base)")
        let steps = try demo.steps.map { try LayerDivergence.Input.open(path: "\(directory)/\($0.label).h5") }
        return try LayerDivergence(base: base, steps: steps)
    }

    func assertMatches(_ comparison: LayerDivergence.Comparison, tensors: [Fixture.Tensor], groups: [Fixture.Group],
                       mostChanged: [String], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(comparison.tensors.map(\.tensor), tensors.map(\.tensor), "\(context): tensors in order", file: file, line: line)
        XCTAssertEqual(comparison.tensors.map(\.group), tensors.map(\.group), "\(context): tensor groups", file: file, line: line)
        XCTAssertEqual(comparison.tensors.map(\.sharedRows), tensors.map(\.sharedRows), "\(context): shared rows", file: file, line: line)
        assertClose(comparison.tensors.map(\.absolute), tensors.map(\.absolute), relative: Self.tolerance, "\(context): tensor absolute", file: file, line: line)
        assertClose(comparison.tensors.map(\.baseNorm), tensors.map(\.baseNorm), relative: Self.tolerance, "\(context): tensor base norm", file: file, line: line)
        assertClose(comparison.tensors.map { $0.relative ?? .nan }, tensors.map { $0.relative ?? .nan }, relative: Self.tolerance,
                    "\(context): tensor relative", file: file, line: line)
        XCTAssertEqual(comparison.groups.map(\.group.name), groups.map(\.group), "\(context): groups in order", file: file, line: line)
        XCTAssertEqual(comparison.groups.map(\.group.layer), groups.map(\.layer), "\(context): group layers", file: file, line: line)
        XCTAssertEqual(comparison.groups.map(\.tensorCount), groups.map(\.tensorCount), "\(context): group sizes", file: file, line: line)
        assertClose(comparison.groups.map(\.absolute), groups.map(\.absolute), relative: Self.tolerance, "\(context): group absolute", file: file, line: line)
        assertClose(comparison.groups.map(\.baseNorm), groups.map(\.baseNorm), relative: Self.tolerance, "\(context): group base norm", file: file, line: line)
        assertClose(comparison.groups.map { $0.relative ?? .nan }, groups.map { $0.relative ?? .nan }, relative: Self.tolerance,
                    "\(context): group relative", file: file, line: line)
        XCTAssertEqual(comparison.mostChangedBlocks, mostChanged, "\(context): most-changed blocks", file: file, line: line)
    }

    func testDemoSeriesMatchesNumpy() throws {
        let f = try fixture()
        let divergence = try demoDivergence(f.demo)
        XCTAssertEqual(divergence.base.step, 0, "the step comes from the base's provenance")
        XCTAssertEqual(divergence.steps.map(\.label), f.demo.steps.map(\.label))
        XCTAssertEqual(divergence.steps.map(\.step), f.demo.steps.map(\.step))
        XCTAssertEqual(divergence.comparisons.count, f.demo.comparisons.count)
        for (comparison, expected) in zip(divergence.comparisons, f.demo.comparisons) {
            let context = "\(expected.label) against \(expected.comparison)"
            XCTAssertEqual(comparison.reference.rawValue, expected.comparison, context)
            XCTAssertEqual(comparison.checkpoint.label, expected.label, context)
            XCTAssertEqual(comparison.checkpoint.step, expected.step, context)
            XCTAssertEqual(comparison.referenceCheckpoint.label, expected.referenceLabel, context)
            XCTAssertEqual(comparison.notes, [], context)
            assertMatches(comparison, tensors: expected.tensors, groups: expected.groups, mostChanged: expected.mostChangedBlocks, context)
        }
        XCTAssertEqual(divergence.groups.map(\.name), ["embedding", "block 0", "block 1", "block 2", "block 3", "final norm", "head"])
        // The demo's finding: the last block moves most at every step against the base.
        XCTAssertEqual(Set(divergence.comparisons(against: .base).map { $0.mostChangedBlocks.first }), ["block 3"])
    }

    func testResizedVocabularyComparesTheSharedRowsAndSaysSo() throws {
        let expected = try fixture().resized
        let before = try LayerDivergence.Input(Checkpoint.open(path: ModelFixtures.checkpointPath(expected.beforeDir, for: self)), label: "base")
        let after = try LayerDivergence.Input(Checkpoint.open(path: ModelFixtures.checkpointPath(expected.afterDir, for: self)), label: "tuned")
        let comparison = try LayerDivergence.compare(after, with: before, as: .base)
        assertMatches(comparison, tensors: expected.tensors, groups: expected.groups, mostChanged: expected.mostChangedBlocks, "resized")
        let embedding = try XCTUnwrap(comparison.tensor("model.embed_tokens.weight"))
        XCTAssertEqual(embedding.sharedRows, 379)
        XCTAssertEqual(embedding.note, "compared the 379 rows both checkpoints have (a resized vocabulary): tuned has 1 more (379 in base, 380 in tuned); the extra rows are left out")
        XCTAssertEqual(comparison.notes.count, 2, "one note each for the embedding and the head: \(comparison.notes)")
        XCTAssertTrue(comparison.notes.contains { $0.hasPrefix("lm_head.weight: compared the 379 rows") }, "\(comparison.notes)")
        XCTAssertNil(comparison.tensor("model.norm.weight")?.note)
        // The other way round, the reference has the extra row.
        let reversed = try LayerDivergence.compare(before, with: after, as: .base)
        XCTAssertEqual(reversed.tensor("lm_head.weight")?.note,
                       "compared the 379 rows both checkpoints have (a resized vocabulary): tuned has 1 more (380 in tuned, 379 in base); the extra rows are left out")
    }

    // MARK: Grouping

    func testBlockNamesOfEveryArchitecture() {
        let cases: [(String, TensorGroup.Kind, Int?, String)] = [
            // gpt2
            ("transformer.wte.weight", .embedding, nil, "embedding"),
            ("transformer.wpe.weight", .positionEmbedding, nil, "position embedding"),
            ("transformer.h.0.attn.c_attn.weight", .block, 0, "block 0"),
            ("transformer.h.11.mlp.c_proj.bias", .block, 11, "block 11"),
            ("transformer.ln_f.weight", .finalNorm, nil, "final norm"),
            // gpt_neox
            ("gpt_neox.embed_in.weight", .embedding, nil, "embedding"),
            ("gpt_neox.layers.3.attention.query_key_value.weight", .block, 3, "block 3"),
            ("gpt_neox.final_layer_norm.bias", .finalNorm, nil, "final norm"),
            ("embed_out.weight", .head, nil, "head"),
            // llama
            ("model.embed_tokens.weight", .embedding, nil, "embedding"),
            ("model.layers.31.self_attn.q_proj.weight", .block, 31, "block 31"),
            ("model.layers.2.post_attention_layernorm.weight", .block, 2, "block 2"),
            ("model.norm.weight", .finalNorm, nil, "final norm"),
            ("lm_head.weight", .head, nil, "head"),
            ("score.weight", .score, nil, "score"),
            // opt
            ("model.decoder.embed_tokens.weight", .embedding, nil, "embedding"),
            ("model.decoder.embed_positions.weight", .positionEmbedding, nil, "position embedding"),
            ("model.decoder.project_in.weight", .projection, nil, "projection"),
            ("model.decoder.layers.5.fc1.bias", .block, 5, "block 5"),
            ("model.decoder.layers.0.self_attn_layer_norm.weight", .block, 0, "block 0"),
            ("model.decoder.final_layer_norm.weight", .finalNorm, nil, "final norm"),
            // anything else: its own group; a layer index must be all digits
            ("model.rotary.inv_freq", .other, nil, "model.rotary.inv_freq"),
            ("model.layers.x.weight", .other, nil, "model.layers.x"),
            ("transformer.h.1e3.bias", .other, nil, "transformer.h.1e3"),
            ("embedding.weight", .other, nil, "other: embedding"),
            ("layers.7", .block, 7, "block 7"),
        ]
        for (name, kind, layer, group) in cases {
            let parsed = TensorGroup(tensorName: name)
            XCTAssertEqual(parsed.kind, kind, name)
            XCTAssertEqual(parsed.layer, layer, name)
            XCTAssertEqual(parsed.name, group, name)
        }
    }

    /// Every tensor every supported architecture stores lands in a block or a named group, blocks
    /// get exactly the layer indices the config declares, and all blocks hold the same tensors.
    func testEveryTensorOfEveryArchitectureIsGrouped() throws {
        let configs: [(String, CheckpointKind)] = [
            ("hf/gpt2", .policy), ("hf/gpt2-rm", .rewardModel), ("hf/neox", .policy), ("hf/neox-rm", .rewardModel),
            ("hf/llama", .policy), ("hf/llama-rm", .rewardModel), ("hf/mistral", .policy), ("hf/qwen2", .policy),
            ("logprobs/models/sharp-gemma", .policy), ("logprobs/models/sharp-gemma2", .policy), ("logprobs/models/sharp-phi3", .policy),
            ("logprobs/models/sharp-olmo2", .policy), ("logprobs/models/sharp-opt", .policy), ("logprobs/models/sharp-opt-rm", .rewardModel),
        ]
        var architectures: Set<String> = []
        for (directory, kind) in configs {
            let path = Fixtures.path("\(directory)/config.json")
            let config = try ModelConfig(json: JSONValue.parse(String(contentsOfFile: path, encoding: .utf8), source: path), source: path)
            architectures.insert(config.architecture.rawValue)
            let names = TensorLayout.expectedShapes(for: config, kind: kind).keys.sorted()
            let groups = names.map { TensorGroup(tensorName: $0) }
            for (name, group) in zip(names, groups) {
                XCTAssertNotEqual(group.kind, .other, "\(directory): \(name) should be in a block or a named group")
            }
            XCTAssertEqual(Set(groups.compactMap(\.layer)), Set(0..<config.layerCount), directory)
            let perBlock = Dictionary(grouping: zip(names, groups).filter { $0.1.kind == .block }, by: { $0.1.layer ?? -1 })
                .mapValues { $0.map { $0.0.split(separator: ".").drop { $0 != "layers" && $0 != "h" }.dropFirst(2).joined(separator: ".") }.sorted() }
            XCTAssertEqual(Set(perBlock.values).count, 1, "\(directory): every block holds the same tensors")
            XCTAssertEqual(groups.contains { $0.kind == .score }, kind == .rewardModel, directory)
        }
        XCTAssertEqual(architectures, Set(Architecture.allCases.map(\.rawValue)), "one config per supported architecture")
    }

    func testGroupOrder() {
        let names = ["score.weight", "lm_head.weight", "z.weight", "model.layers.10.a", "model.layers.2.a", "model.norm.weight",
                     "model.embed_tokens.weight", "model.decoder.embed_positions.weight", "a.bias", "model.decoder.project_out.weight"]
        XCTAssertEqual(names.map { TensorGroup(tensorName: $0) }.sorted().map(\.name),
                       ["embedding", "position embedding", "block 2", "block 10", "final norm", "projection", "head", "score", "a", "z"])
    }

    // MARK: Refusals and edge cases

    /// A copy of the hand-written GPT-2 checkpoint with tensors changed, dropped (nil) or added.
    func variant(_ name: String, step: Int? = nil, extra: [CheckpointTensor] = [],
                 _ change: (CheckpointTensor) -> CheckpointTensor? = { $0 }) throws -> String {
        let source = try Checkpoint.open(path: Fixtures.path("checkpoints/handwritten-gpt2.h5"))
        let destination = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("\(name).h5")
        var provenance = Provenance()
        provenance.trainingStep = step
        let writer = try CheckpointWriter(destination: destination, architecture: source.architecture, kind: source.kind,
                                          configJSON: source.config.json.serialized(), tokenizerJSON: source.tokenizerJSON,
                                          tokenizerConfigJSON: nil, provenance: provenance)
        for info in source.tensors {
            guard let tensor = change(try source.loadTensor(info.name)) else { continue }
            try writer.addTensor(name: tensor.name, shape: tensor.shape, values: tensor.values, dtype: .f32)
        }
        for tensor in extra { try writer.addTensor(name: tensor.name, shape: tensor.shape, values: tensor.values, dtype: .f32) }
        try writer.finish()
        return destination.path
    }

    /// Moves every value by a small, deterministic amount.
    static func nudged(_ tensor: CheckpointTensor, by scale: Float = 0.01) -> CheckpointTensor {
        CheckpointTensor(name: tensor.name, shape: tensor.shape, values: tensor.values.enumerated().map { $1 + scale * Float($0 % 7 - 3) })
    }

    func testArchitectureMismatchesAreRefusedNamingBothFilesAndTheTensor() throws {
        let base = try variant("base")
        let missing = try variant("missing") { $0.name == "transformer.h.0.ln_2.bias" ? nil : $0 }
        let transposed = try variant("transposed") { t in
            t.name == "transformer.h.0.mlp.c_fc.weight" ? CheckpointTensor(name: t.name, shape: t.shape.reversed(), values: t.values) : t
        }
        let longerContext = try variant("positions") { t in
            t.name == "transformer.wpe.weight" ? CheckpointTensor(name: t.name, shape: [65, 16], values: t.values + Array(repeating: 0, count: 16)) : t
        }
        let input = { (path: String) in try LayerDivergence.Input.open(path: path) }
        XCTAssertThrowsError(try LayerDivergence(base: input(base), steps: [input(missing)])) { error in
            XCTAssertEqual("\(error)", "cannot compare the weights of \(base) and \(missing): they hold different tensors, so they are not the same "
                           + "architecture: /tensors/transformer.h.0.ln_2.bias only in \(base)")
        }
        XCTAssertThrowsError(try LayerDivergence(base: input(base), steps: [input(transposed)])) { error in
            XCTAssertEqual("\(error)", "cannot compare the weights of \(base) and \(transposed): /tensors/transformer.h.0.mlp.c_fc.weight has shape "
                           + "[16, 64] in \(base) but [64, 16] in \(transposed), so they are not the same architecture; the shapes must agree "
                           + "(only a resized vocabulary may change the rows of the token embedding and the output head)")
        }
        XCTAssertThrowsError(try LayerDivergence(base: input(base), steps: [input(longerContext)])) { error in
            XCTAssertTrue("\(error)".contains("/tensors/transformer.wpe.weight has shape [64, 16] in \(base) but [65, 16] in \(longerContext)"), "\(error)")
            XCTAssertTrue("\(error)".contains("only the token embedding and the output head may differ in rows"), "\(error)")
        }
        XCTAssertThrowsError(try LayerDivergence(base: input(base), steps: [])) { error in
            XCTAssertTrue("\(error)".contains("no checkpoints to compare with the base"), "\(error)")
        }
        // A different architecture says so too.
        let neox = Fixtures.repositoryPath("checkpoints/demo/base.h5")
        XCTAssertThrowsError(try LayerDivergence(base: input(base), steps: [input(neox)])) { error in
            XCTAssertTrue("\(error)".contains("(\(base) is a gpt2 policy, \(neox) a gpt_neox policy)"), "\(error)")
        }
    }

    func testAddedVocabularyRowsOnTheTokenEmbeddingAreComparedOverTheSharedRows() throws {
        let base = try variant("base")
        let grown = try variant("grown") { t in
            t.name == "transformer.wte.weight" ? CheckpointTensor(name: t.name, shape: [322, 16], values: t.values + Array(repeating: 0.5, count: 32)) : t
        }
        let comparison = try LayerDivergence.compare(.open(path: grown), with: .open(path: base), as: .base)
        let embedding = try XCTUnwrap(comparison.tensor("transformer.wte.weight"))
        XCTAssertEqual(embedding.sharedRows, 320)
        XCTAssertEqual(embedding.absolute, 0, "the shared rows are unchanged; the added ones are left out")
        XCTAssertEqual(embedding.shape, [320, 16], "the reference's shape")
        XCTAssertEqual(comparison.notes, ["transformer.wte.weight: compared the 320 rows both checkpoints have (a resized vocabulary): grown has 2 more "
                                          + "(320 in base, 322 in grown); the extra rows are left out"])
    }

    func testAllZeroReferenceGivesAnAbsoluteChangeAndNoRelative() throws {
        let zeroBlock = try variant("zero-block", step: 0) { t in
            t.name.hasPrefix("transformer.h.0.") ? CheckpointTensor(name: t.name, shape: t.shape, values: t.values.map { _ in 0 }) : t
        }
        let tuned = try variant("tuned", step: 10) { Self.nudged($0) }
        let divergence = try LayerDivergence(base: .open(path: zeroBlock), steps: [.open(path: tuned)])
        let comparison = try XCTUnwrap(divergence.comparisons.first)
        let bias = try XCTUnwrap(comparison.tensor("transformer.h.0.ln_1.bias"))
        XCTAssertNil(bias.relative)
        XCTAssertEqual(bias.baseNorm, 0)
        XCTAssertGreaterThan(bias.absolute, 0)
        XCTAssertEqual(bias.note, "the reference tensor is all zeros, so only the absolute change is reported")
        let block = try XCTUnwrap(comparison.group("block 0"))
        XCTAssertNil(block.relative, "every tensor of the block is zero in the reference")
        XCTAssertGreaterThan(block.absolute, 0)
        XCTAssertEqual(comparison.mostChangedBlocks, [], "an undefined block is not ranked")
        XCTAssertNotNil(comparison.group("final norm")?.relative)
        // No NaN anywhere, so the result serialises, and the CSV leaves the undefined cells empty.
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = try XCTUnwrap(String(data: try encoder.encode(divergence), encoding: .utf8))
        XCTAssertTrue(json.contains("\"most_changed_blocks\":[]"), json)
        let csv = try divergence.csvTable().text
        XCTAssertTrue(csv.contains("\n10,tuned,base,block 0,,,"), csv)
        XCTAssertTrue(csv.contains("\n10,tuned,base,block 0,transformer.h.0.ln_1.bias,,"), csv)
        XCTAssertFalse(csv.contains("nan"), csv)
    }

    func testNonFiniteWeightsAreRefusedNamingTheFile() throws {
        let base = try variant("base")
        let broken = try variant("broken") { t in
            t.name == "transformer.ln_f.weight" ? CheckpointTensor(name: t.name, shape: t.shape, values: [.nan] + t.values.dropFirst()) : t
        }
        XCTAssertThrowsError(try LayerDivergence.compare(.open(path: broken), with: .open(path: base), as: .base)) { error in
            XCTAssertEqual("\(error)", "\(broken): /tensors/transformer.ln_f.weight holds non-finite values (NaN or infinity), so its divergence is "
                           + "undefined; `irm inspect --check-values \(broken)` counts them")
        }
        XCTAssertThrowsError(try LayerDivergence.compare(.open(path: base), with: .open(path: broken), as: .base)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(broken): /tensors/transformer.ln_f.weight"), "\(error)")
        }
    }

    func testIdenticalCheckpointsHaveZeroDivergenceAndPreviousChainsTheSteps() throws {
        let base = try variant("base", step: 0)
        let first = try variant("first", step: 1) { Self.nudged($0, by: 0.01) }
        let second = try variant("second", step: 2) { Self.nudged($0, by: 0.03) }
        let divergence = try LayerDivergence(base: .open(path: base), steps: [.open(path: base, label: "again"), .open(path: first), .open(path: second)])
        XCTAssertEqual(divergence.comparisons.map(\.reference), [.base, .previous, .base, .previous, .base, .previous])
        XCTAssertEqual(divergence.comparisons.map(\.referenceCheckpoint.label), ["base", "base", "base", "again", "base", "first"])
        XCTAssertTrue(divergence.comparisons[0].tensors.allSatisfy { $0.absolute == 0 && $0.relative == 0 })
        XCTAssertEqual(divergence.comparisons[0].tensors, divergence.comparisons[1].tensors, "the first step's previous checkpoint is the base")
        // second − base moves value k by 0.03·c_k, second − first by 0.02·c_k: two thirds of it.
        let againstBase = try XCTUnwrap(divergence.comparisons[4].tensor("transformer.ln_f.bias"))
        let againstPrevious = try XCTUnwrap(divergence.comparisons[5].tensor("transformer.ln_f.bias"))
        assertClose(againstPrevious.absolute / againstBase.absolute, 2.0 / 3.0, relative: 1e-5)
    }

    /// The blocked sums against a plain loop.
    func testBlockedSquaredSumsMatchAPlainLoop() {
        var generator = SeededGenerator(seed: 11)
        for count in [0, 1, 1023, 1024, 1025, 5000] {
            let a = generator.floats(count + 3, scale: 2), b = generator.floats(count + 3, scale: 2)
            var plainReference = 0.0, plainDifference = 0.0
            for i in 0..<count {
                plainReference += Double(a[i]) * Double(a[i])
                plainDifference += (Double(b[i]) - Double(a[i])) * (Double(b[i]) - Double(a[i]))
            }
            let sums = LayerDivergence.squaredSums(reference: a, candidate: b, count: count)
            assertClose(sums.reference, plainReference, relative: 1e-13, "count \(count)")
            assertClose(sums.difference, plainDifference, relative: 1e-13, "count \(count)")
        }
    }

    // MARK: Writers

    func testCSVStartsWithTheBaseComparisonOfTheFirstStepGroupByGroup() throws {
        let f = try fixture()
        let divergence = try demoDivergence(f.demo)
        let lines = try divergence.csvTable().text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "step,label,comparison,group,tensor,relative,absolute,base_norm")
        XCTAssertEqual(lines.count, 1 + 8 * (7 + 52) + 1, "a header, a row per group and per tensor of each comparison, and the final newline")
        XCTAssertEqual(lines.last, "")
        let first = try XCTUnwrap(divergence.comparisons.first)
        let embedding = try XCTUnwrap(first.group("embedding")), embedIn = try XCTUnwrap(first.tensor("gpt_neox.embed_in.weight"))
        XCTAssertEqual(lines[1], "50,rlhf-step-0050,base,embedding,," + [embedding.relative ?? .nan, embedding.absolute, embedding.baseNorm].map(NumberFormat.exact).joined(separator: ","))
        XCTAssertEqual(lines[2], "50,rlhf-step-0050,base,embedding,gpt_neox.embed_in.weight," + [embedIn.relative ?? .nan, embedIn.absolute, embedIn.baseNorm].map(NumberFormat.exact).joined(separator: ","))
        XCTAssertTrue(lines[3].hasPrefix("50,rlhf-step-0050,base,block 0,,"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix("50,rlhf-step-0050,base,block 0,gpt_neox.layers.0.attention.dense.bias,"), lines[4])
        // The numbers are numpy's.
        let expected = try XCTUnwrap(f.demo.comparisons.first)
        let cells = lines[1].split(separator: ",", omittingEmptySubsequences: false).compactMap { Double($0) }
        let group = try XCTUnwrap(expected.groups.first)
        assertClose(Array(cells.suffix(3)), [group.relative ?? .nan, group.absolute, group.baseNorm], relative: Self.tolerance)
        XCTAssertTrue(lines.contains { $0.hasPrefix("200,rlhf,previous,head,embed_out.weight,") })

        let dir = try Fixtures.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("layers.csv")
        try divergence.writeCSV(to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), try divergence.csvTable().text)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["layers.csv"], "no temporary left behind")
    }

    /// Parses an SVG with XMLParser: whether it is well-formed, element counts, and every <title>.
    final class SVGSummary: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var titles: [String] = []
        private var inTitle = false
        func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            counts[element, default: 0] += 1
            if element == "title" { inTitle = true; titles.append("") }
        }
        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            if element == "title" { inTitle = false }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if inTitle, !titles.isEmpty { titles[titles.count - 1] += string }
        }
    }

    func parse(_ svg: String) throws -> SVGSummary {
        let parser = XMLParser(data: Data(svg.utf8))
        let summary = SVGSummary()
        parser.delegate = summary
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")")
        return summary
    }

    func testHeatmapIsDeterministicWellFormedAndCarriesEveryValue() throws {
        let divergence = try demoDivergence(try fixture().demo)
        let svg = try divergence.heatmap(against: .base)
        XCTAssertEqual(svg, try divergence.heatmap(against: .base), "byte-identical for the same input")
        XCTAssertEqual(svg, try demoDivergence(try fixture().demo).heatmap(against: .base), "and for a fresh computation")
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let summary = try parse(svg)
        XCTAssertEqual(summary.counts["svg"], 1)
        XCTAssertEqual(summary.titles.count, 7 * 4, "one tooltip per group and step")
        let block3 = try XCTUnwrap(divergence.comparisons(against: .base).last?.group("block 3")?.relative)
        XCTAssertTrue(summary.titles.contains("block 3, 200: \(NumberFormat.significant(block3, digits: 4))"), "\(summary.titles)")
        XCTAssertTrue(svg.contains(">training step</text>"))
        XCTAssertFalse(svg.contains("undefined"), "every value of the demo is defined")
        XCTAssertNotEqual(svg, try divergence.heatmap(against: .previous))
    }

    func testHeatmapScaleLegendEscapingAndShapeErrors() throws {
        let svg = try SVGHeatmap.render(title: "a <b> & c", rowLabels: ["r\"1", "r2"], columnLabels: ["x", "a long column label"],
                                        values: [[0, 1], [nil, .nan]], xLabel: "steps", yLabel: "groups", valueLabel: "relative")
        let summary = try parse(svg)
        XCTAssertEqual(summary.titles, ["r\"1, x: 0", "r\"1, a long column label: 1.000", "r2, x: undefined", "r2, a long column label: undefined"])
        XCTAssertTrue(svg.contains("a &lt;b&gt; &amp; c"))
        XCTAssertTrue(svg.contains("fill=\"#f7fbff\" stroke=\"white\"><title>"), "the low end of the scale")
        XCTAssertTrue(svg.contains("fill=\"#08306b\" stroke=\"white\"><title>"), "the high end of the scale")
        XCTAssertTrue(svg.contains("rotate(-45"), "long column labels are turned")
        XCTAssertTrue(svg.contains(">undefined</text>"), "the legend explains the grey cells")
        XCTAssertEqual(SVGHeatmap.colour(0.5), "#6baed6")
        XCTAssertEqual(SVGHeatmap.colour(-1), "#f7fbff")
        XCTAssertEqual(SVGHeatmap.colour(.nan), "#f7fbff")
        XCTAssertEqual(SVGHeatmap.colour(0.0625), "#ebf3fb")
        XCTAssertThrowsError(try SVGHeatmap.render(title: "t", rowLabels: ["a"], columnLabels: ["x", "y"], values: [[1]], xLabel: "", valueLabel: "")) { error in
            XCTAssertEqual("\(error)", "heatmap \"t\": row 0 (a) has 1 values for 2 columns; expected one per column")
        }
        XCTAssertThrowsError(try SVGHeatmap.render(title: "t", rowLabels: ["a", "b"], columnLabels: ["x"], values: [[1]], xLabel: "", valueLabel: ""))
        let empty = try parse(try SVGHeatmap.render(title: "t", rowLabels: [], columnLabels: [], values: [], xLabel: "", valueLabel: ""))
        XCTAssertEqual(empty.counts["svg"], 1)
    }
}
