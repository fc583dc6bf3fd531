import Foundation
import XCTest
@testable import IRMKit

/// The committed parity fixtures of Tests/Fixtures/logprobs (scripts/fixtures/make_logprob_fixtures.py).
struct LogProbFixture: Decodable {
    let model: String
    let modelDir: String
    let kind: String
    let samples: [Sample]

    struct Sample: Decodable {
        let id: String
        let prompt: String
        let response: String
        let promptIds: [Int32]
        let responseIds: [Int32]
        let logprobs: [Double?]?
        let logprobSum: Double?
        let logprobMean: Double?
        let score: [Double]?
    }

    static func load(_ name: String) throws -> LogProbFixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(LogProbFixture.self, from: Data(contentsOf: Fixtures.url("logprobs/\(name).json")))
    }

    var scoringSamples: [ScoringSample] {
        samples.map { ScoringSample(name: "sample \($0.id)", promptIDs: $0.promptIds, responseIDs: $0.responseIds) }
    }
}

struct KLFixture: Decodable {
    let pairs: [Pair]

    struct Pair: Decodable {
        let after: String
        let before: String
        let afterDir: String
        let beforeDir: String
        let samples: [Sample]
    }

    struct Sample: Decodable {
        let id: String
        let promptIds: [Int32]
        let responseIds: [Int32]
        let kl: [Double?]
        let klSum: Double
        let logprobsAfter: [Double?]
        let logprobsBefore: [Double?]
    }

    /// `file`: kl.json (make_logprob_fixtures.py) or kl-architectures.json (make_architecture_fixtures.py).
    static func load(_ file: String = "kl.json") throws -> KLFixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(KLFixture.self, from: Data(contentsOf: Fixtures.url("logprobs/\(file)")))
    }
}

enum ModelFixtures {
    /// Converts a Hugging Face fixture directory (relative to Tests/Fixtures) into a checkpoint in
    /// a temporary directory and returns its path.
    static func checkpointPath(_ modelDir: String, for testCase: XCTestCase) throws -> String {
        let name = modelDir.replacingOccurrences(of: "/", with: "_")
        let out = try Fixtures.temporaryDirectory(for: testCase).appendingPathComponent("\(name).h5").path
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path(modelDir), output: out)
        return out
    }

    static func load(_ modelDir: String, for testCase: XCTestCase) throws -> any TransformerModel {
        try ModelLoading.load(path: checkpointPath(modelDir, for: testCase))
    }

    /// A converted copy of a Hugging Face fixture with some tensors' values changed, as float32
    /// in a new checkpoint in `directory`: `edits[name]` rewrites tensor `name`'s flat values.
    static func edited(_ modelDir: String, in directory: URL, _ edits: [String: (inout [Float]) -> Void]) throws -> String {
        let source = directory.appendingPathComponent("src-\(UUID().uuidString.prefix(6)).h5")
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path(modelDir), output: source.path)
        let checkpoint = try Checkpoint.open(path: source.path)
        let out = directory.appendingPathComponent("edited-\(UUID().uuidString.prefix(6)).h5")
        let writer = try CheckpointWriter(destination: out, architecture: checkpoint.architecture, kind: checkpoint.kind,
                                          configJSON: checkpoint.config.json.serialized(), tokenizerJSON: checkpoint.tokenizerJSON,
                                          tokenizerConfigJSON: nil, provenance: Provenance())
        for name in edits.keys where !checkpoint.tensors.contains(where: { $0.name == name }) {
            XCTFail("\(modelDir) has no tensor \(name)")
        }
        for info in checkpoint.tensors {
            var values = try checkpoint.loadTensor(info.name).values
            edits[info.name]?(&values)
            try writer.addTensor(name: info.name, shape: info.shape, values: values, dtype: .f32)
        }
        try writer.finish()
        return out.path
    }
}

/// Missing log-probs as NaN, so that `assertClose` also checks where they are missing.
func withMissingAsNaN(_ values: [Double?]) -> [Double] { values.map { $0 ?? .nan } }

/// A small seeded generator (SplitMix64) for test inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale...scale, using: &self) }
    }
}
