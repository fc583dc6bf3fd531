import Foundation
import XCTest
@testable import IRMKit

/// Reading tokenizer.json: the vocabulary API, special-token information, and errors that name the
/// component and its JSON path instead of falling back silently.
final class TokenizerConfigurationTests: XCTestCase {
    /// A minimal byte-level tokenizer.json whose sections can be replaced one by one.
    static func config(normalizer: String = "null", preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false}"#,
                       model: String? = nil, postProcessor: String = "null", decoder: String = #"{"type": "ByteLevel"}"#,
                       addedTokens: String = "[]") -> String {
        let defaultModel = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "<unk>": 4}, "merges": ["a b"]}"#
        return """
            {"version": "1.0", "truncation": null, "padding": null, "added_tokens": \(addedTokens),
             "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "model": \(model ?? defaultModel),
             "post_processor": \(postProcessor), "decoder": \(decoder)}
            """
    }

    func assertError(_ json: String, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Tokenizer(json: json, sourceDescription: "checkpoint demo.h5"), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("checkpoint demo.h5"), "«\(message)» should name the source", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "«\(message)» should contain «\(fragment)»", file: file, line: line)
            }
        }
    }

    func testUnsupportedComponentsAreErrorsNamingTypeAndPath() {
        assertError(Self.config(normalizer: #"{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "BertNormalizer"}]}"#),
                    contains: ["normalizer.normalizers[1]", "unsupported normalizer type \"BertNormalizer\""])
        assertError(Self.config(preTokenizer: #"{"type": "Whitespace"}"#),
                    contains: ["pre_tokenizer:", "unsupported pre-tokenizer type \"Whitespace\"", "ByteLevel, Split"])
        assertError(Self.config(model: #"{"type": "WordPiece", "vocab": {}}"#),
                    contains: ["model:", "unsupported model type \"WordPiece\""])
        assertError(Self.config(postProcessor: #"{"type": "RobertaProcessing"}"#),
                    contains: ["post_processor:", "unsupported post-processor type \"RobertaProcessing\""])
        assertError(Self.config(decoder: #"{"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "CTC"}]}"#),
                    contains: ["decoder.decoders[1]", "unsupported decoder type \"CTC\""])
        assertError(Self.config(preTokenizer: #"{"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Digits"}]}"#),
                    contains: ["pre_tokenizer.pretokenizers[1]", "after ByteLevel"])
    }

    func testBadModelsAreErrorsThatSayWhatWasExpected() {
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#),
                    contains: ["model.merges[0]", "merged token \"ab\" is not in the vocabulary"])
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b c"]}"#),
                    contains: ["model.merges[0]", "expected a merge \"a b\""])
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}"#),
                    contains: ["model", "dropout 0.1"])
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}"#),
                    contains: ["unk_token \"<unk>\" is not in the vocabulary"])
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#),
                    contains: ["model.vocab", "non-negative integer id"])
        assertError(Self.config(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [], "continuing_subword_prefix": "@@"}"#),
                    contains: ["continuing_subword_prefix \"@@\" is not supported"])
        assertError(Self.config(addedTokens: #"[{"id": 9, "content": "<x>", "special": true}]"#),
                    contains: ["added_tokens[0]", "listed with id 9", "would give it id 5"])
        assertError("{\"model\": ", contains: ["malformed JSON"])
        assertError(Self.config(postProcessor: #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}"#),
                    contains: ["post_processor.single[0]", "special_tokens does not define"])
    }

    func testMergesAsStringsAndAsPairsAreTheSame() throws {
        let strings = try Tokenizer(json: Self.config(), sourceDescription: "strings")
        let pairs = try Tokenizer(json: Self.config(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "<unk>": 4}, "merges": [["a", "b"]]}"#),
                                  sourceDescription: "pairs")
        XCTAssertEqual(strings.encode("ab ab").ids, [2, 3, 2])
        XCTAssertEqual(pairs.encode("ab ab").ids, [2, 3, 2])
    }

    /// Swift `String` equality is canonical equivalence; token lookups must compare exact scalars.
    /// (The vocabulary cannot hold both "é" and "e\u{301}" here, because the project's JSON object
    /// keys are Swift Strings; see docs/tokenizers.md.)
    func testVocabularyLookupsAreExactNotCanonicallyEquivalent() throws {
        let model = #"{"type": "BPE", "vocab": {"e": 1, "\u0301": 2, "e\u0301": 3, "a": 0}, "merges": [["e", "\u0301"]]}"#
        let tokenizer = try Tokenizer(json: Self.config(preTokenizer: "null", model: model, decoder: "null"), sourceDescription: "t")
        XCTAssertEqual(tokenizer.id(forToken: "e\u{301}"), 3)
        XCTAssertNil(tokenizer.id(forToken: "\u{e9}"), "precomposed é is a different token")
        XCTAssertEqual(tokenizer.encode("e\u{301}").ids, [3])
        XCTAssertEqual(tokenizer.encode("\u{e9}a").ids, [0], "an unknown scalar without unk_token is dropped, as in Hugging Face")
        XCTAssertEqual(tokenizer.tokenString(3).map { Array($0.unicodeScalars) }, Array("e\u{301}".unicodeScalars))
        XCTAssertNil(tokenizer.tokenString(99))
        XCTAssertNil(tokenizer.id(forToken: "x"))
    }

    func testSpecialTokenInformation() throws {
        let gpt2 = try TokenizerParityTests.loadTokenizer("gpt2")
        XCTAssertFalse(gpt2.addsBOS)
        XCTAssertNil(gpt2.bosTokenId)
        XCTAssertEqual(gpt2.vocabularySize, 50257)
        XCTAssertEqual(gpt2.id(forToken: "<|endoftext|>"), 50256)
        XCTAssertTrue(gpt2.isSpecialToken("<|endoftext|>"))
        XCTAssertEqual(gpt2.tokenString(50256), "<|endoftext|>")

        let llama2 = try TokenizerParityTests.loadTokenizer("llama2-style")
        XCTAssertTrue(llama2.addsBOS)
        XCTAssertEqual(llama2.bosTokenId, 1)
        XCTAssertEqual(llama2.suffixSpecialTokenIds, [])

        let llama3 = try TokenizerParityTests.loadTokenizer("llama3-style")
        XCTAssertEqual(llama3.bosTokenId, llama3.id(forToken: "<|begin_of_text|>"))
        XCTAssertEqual(llama3.encode("Hi").ids.first, llama3.bosTokenId)
        XCTAssertNotEqual(llama3.encode("Hi", addSpecialTokens: false).ids.first, llama3.bosTokenId)
    }

    /// What the scorer does: prompt with special tokens, response without, concatenated. The ids must
    /// be the ones the log-prob fixtures were computed from (Hugging Face, same tokenizer.json).
    func testPromptAndResponseIdsMatchTheLogProbFixtures() throws {
        let directory = Fixtures.url("logprobs")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var checked = 0
        // The *-long fixtures (make_rope_fixtures.py --long) score slices of one long encoding; their
        // text fields are those ids decoded, which need not encode back to the same slice.
        for name in files.sorted() where name.hasSuffix(".json") && !name.hasSuffix("-long.json") {
            let source = "logprobs/\(name)"
            let json = try JSONValue.parse(try Data(contentsOf: directory.appendingPathComponent(name)), source: source)
            guard let modelDirectory = json["model_dir"]?.stringValue else { continue }
            let tokenizerPath = Fixtures.path("\(modelDirectory)/tokenizer.json")
            guard FileManager.default.fileExists(atPath: tokenizerPath) else { continue }
            let tokenizer = try TokenizationJSONLines.loadTokenizer(jsonPath: tokenizerPath)
            for sample in json["samples"]?.arrayValue ?? [] {
                guard let prompt = sample["prompt"]?.stringValue, let response = sample["response"]?.stringValue,
                      let promptIDs = sample["prompt_ids"]?.arrayValue?.compactMap(\.intValue),
                      let responseIDs = sample["response_ids"]?.arrayValue?.compactMap(\.intValue) else { continue }
                XCTAssertEqual(tokenizer.encode(prompt).ids.map(Int.init), promptIDs, "\(source): prompt \(prompt.debugDescription)")
                XCTAssertEqual(tokenizer.encode(response, addSpecialTokens: false).ids.map(Int.init), responseIDs,
                               "\(source): response \(response.debugDescription)")
                checked += 1
            }
        }
        if checked == 0 { throw XCTSkip("Tests/Fixtures/logprobs has no samples with prompt_ids and response_ids yet") }
    }

    /// Every tokenizer.json shipped with the Hugging Face model fixtures loads.
    func testModelFixtureTokenizersLoad() throws {
        let root = Fixtures.url("hf")
        let directories = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        var loaded = 0
        for directory in directories.sorted() {
            let path = root.appendingPathComponent(directory).appendingPathComponent("tokenizer.json").path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let tokenizer = try TokenizationJSONLines.loadTokenizer(jsonPath: path)
            XCTAssertGreaterThan(tokenizer.encode("Hello world").count, 0, directory)
            loaded += 1
        }
        XCTAssertGreaterThan(loaded, 0, "expected model fixtures with tokenizer.json under Tests/Fixtures/hf")
    }
}
