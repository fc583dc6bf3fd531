import Foundation
import XCTest
@testable import IRMKit

/// NaN or infinite weights made every log-prob `null` with exit status 0 (issue 14, item 4). They
/// are refused when the model is loaded, naming the file, the tensor and the first bad index.
final class NonFiniteWeightsTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    /// The vectorised scan against the plain one, on lengths around its 16-lane blocks, with the
    /// bad value anywhere (or nowhere) and the finite extremes around it.
    func testFastScanAgreesWithThePlainScan() {
        var random = SeededGenerator(seed: 14)
        let bad: [Float] = [.nan, -.nan, .signalingNaN, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0xFF80_0001)]
        let extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -.leastNormalMagnitude, -0.0, 0]
        for count in [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000] {
            for trial in 0..<12 {
                var values = random.floats(count, scale: 1e3)
                for _ in 0..<(count / 4) { values[Int.random(in: 0..<count, using: &random)] = extremes.randomElement(using: &random)! }
                if count > 0, trial > 0 {
                    for _ in 0..<(trial % 3 + 1) { values[Int.random(in: 0..<count, using: &random)] = bad.randomElement(using: &random)! }
                }
                let fast = FiniteValues.firstNonFinite(values)
                let plain = values.withUnsafeBufferPointer { FiniteValues.firstNonFiniteReference($0) }
                XCTAssertEqual(fast, plain, "count \(count), trial \(trial)")
                XCTAssertEqual(FiniteValues.count(values).map { $0.nan + $0.infinite }, plain.map { _ in values.filter { !$0.isFinite }.count })
            }
        }
        XCTAssertEqual(FiniteValues.firstNonFinite([1, 2, .infinity]), 2)
        XCTAssertNil(FiniteValues.firstNonFinite(extremes))
    }

    /// A copy of a converted fixture with some values replaced: `poison[name]` lists (flat index, value).
    func poisoned(_ fixture: String, _ poison: [String: [(Int, Float)]]) throws -> String {
        try ModelFixtures.edited(fixture, in: work, poison.mapValues { changes in
            { values in for (index, value) in changes { values[index] = value } }
        })
    }

    func assertLoadFails(_ path: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelLoading.load(path: path), file: file, line: line) { error in
            XCTAssertEqual("\(error)", "\(path): \(expected)", file: file, line: line)
        }
    }

    func testNonFiniteWeightsAreRefusedAtLoadNamingTheTensor() throws {
        assertLoadFails(try poisoned("hf/gpt2", ["transformer.h.1.ln_2.weight": [(3, .nan), (4, .infinity)]]),
                            "/tensors/transformer.h.1.ln_2.weight: expected finite values, found nan at [3] (a diverged run?)")
        // The embedding, which the tied head shares; [row, column] of the stored shape.
        assertLoadFails(try poisoned("hf/llama", ["model.embed_tokens.weight": [(2 * 32 + 5, -.infinity)]]),
                            "/tensors/model.embed_tokens.weight: expected finite values, found -inf at [2, 5] (a diverged run?)")
        // A reward model's head.
        assertLoadFails(try poisoned("hf/gpt2-rm", ["score.weight": [(7, .nan)]]),
                            "/tensors/score.weight: expected finite values, found nan at [0, 7] (a diverged run?)")
    }

    /// A merge in memory goes through the same check: an adapter's NaN is named in the adapter's
    /// file (LoRAAdapterTests.testBadTensorsAreNamed), and a base tensor's in the base's.
    func testNonFiniteBaseWeightIsNamedWhenAnAdapterIsMergedInMemory() throws {
        let base = try poisoned("hf/llama", ["model.layers.0.input_layernorm.weight": [(1, .nan)]])
        let adapter = Fixtures.path("lora/llama-all")
        XCTAssertThrowsError(try ModelLoading.load(path: base, adapterDirectory: adapter)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(base) + \(adapter): /tensors/model.layers.0.input_layernorm.weight: expected finite values, found nan at [1]"),
                          "\(error)")
        }
    }

    /// `irm score` used to print `null` for every log-prob and exit 0.
    func testScoreExitsWithOneLineNamingTheTensor() throws {
        let path = try poisoned("hf/neox", ["gpt_neox.layers.0.attention.dense.weight": [(0, .nan)]])
        let data = work.appendingPathComponent("d.jsonl")
        try Data(#"{"prompt": "hello there", "response": " good day to you"}"#.utf8).write(to: data)
        let out = work.appendingPathComponent("s.jsonl")
        let result = try CommandRunner.run(["score", "--model", path, "--data", data.path, "--out", out.path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stderr, "irm: error: \(path): /tensors/gpt_neox.layers.0.attention.dense.weight: expected finite values, found nan at [0, 0] (a diverged run?)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
