import Foundation
import XCTest
@testable import IRMKit

/// A UTF-8 byte-order mark (EF BB BF) at the start of a file was "malformed JSON at line 1,
/// column 1: unexpected character 'ï'" in some inputs and silently dropped in others (Foundation
/// drops it when it decodes bytes into a String) (issue 14, item 8). Now each kind of text input
/// either names it, or skips it where its reference reader does:
///
/// | input | with a BOM | as |
/// | --- | --- | --- |
/// | data (JSON lines, JSON array, CSV, TSV), `irm tokenize --file` | skipped | as pandas' `read_csv` |
/// | features file, YAML | skipped | PyYAML skips it |
/// | every JSON file: config.json, tokenizer.json, tokenizer_config.json, adapter_config.json, a features file, `--chat-template` .json, a checkpoint's stored JSON | refused, named | `json.loads` refuses it |
/// | chat templates (.jinja) | refused, named | transformers would keep it as text |
final class ByteOrderMarkTests: XCTestCase {
    static let bom = Data([0xEF, 0xBB, 0xBF])
    static let jsonMessage = "starts with a UTF-8 byte-order mark (bytes EF BB BF), which JSON text must not have; save the file as UTF-8 without it"
    static let templateMessage = "starts with a UTF-8 byte-order mark (bytes EF BB BF), which Hugging Face would keep as the template's first character; save the file as UTF-8 without it"

    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    func assertMessage(_ body: @autoclosure () throws -> Any, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
    }

    /// `contents` with a byte-order mark in front, written to `name` in the work directory.
    func withMark(_ contents: Data, _ name: String) throws -> URL {
        let url = work.appendingPathComponent(name)
        try (Self.bom + contents).write(to: url)
        return url
    }

    func testJSONTextNamesTheMark() {
        assertMessage(try JSONValue.parse(Self.bom + Data("{}".utf8), source: "x.json"), "x.json: \(Self.jsonMessage)")
        assertMessage(try JSONValue.parse("\u{FEFF}{}", source: "ckpt.h5: /config"), "ckpt.h5: /config: \(Self.jsonMessage)")
        // A U+FEFF inside the text is just a character (inside a string) or an error elsewhere.
        XCTAssertEqual(try JSONValue.parse(" \"\u{FEFF}\"", source: "x.json"), .string("\u{FEFF}"))
    }

    /// Each JSON file of a Hugging Face model directory, and its chat template.
    func testModelDirectoryFilesNameTheMark() throws {
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            let directory = work.appendingPathComponent("gpt2-\(name)")
            try FileManager.default.copyItem(at: Fixtures.url("hf/gpt2"), to: directory)
            let file = directory.appendingPathComponent(name)
            let contents = name.hasSuffix(".jinja") ? Data("{{ messages[0]['content'] }}".utf8) : try Data(contentsOf: file)
            try (Self.bom + contents).write(to: file)
            assertMessage(try HuggingFaceImporter.convert(directory: directory.path, output: work.appendingPathComponent("\(name).h5").path),
                          "\(file.path): \(name.hasSuffix(".jinja") ? Self.templateMessage : Self.jsonMessage)")
        }
    }

    func testAdapterConfigNamesTheMark() throws {
        let directory = work.appendingPathComponent("adapter")
        try FileManager.default.copyItem(at: Fixtures.url("lora/llama-all"), to: directory)
        let file = directory.appendingPathComponent("adapter_config.json")
        try (Self.bom + Data(contentsOf: file)).write(to: file)
        assertMessage(try LoRAAdapter.load(directory: directory.path), "\(file.path): \(Self.jsonMessage)")
    }

    func testTokenizerFileNamesTheMark() throws {
        let file = try withMark(try Data(contentsOf: Fixtures.url("hf/gpt2/tokenizer.json")), "tokenizer.json")
        assertMessage(try TokenizationJSONLines.loadTokenizer(jsonPath: file.path), "\(file.path): \(Self.jsonMessage)")
    }

    /// JSON is refused; YAML, which allows the mark, reads as without it.
    func testFeaturesFiles() throws {
        let json = try withMark(Data(#"{"features": [{"name": "says_the", "regex": "the"}]}"#.utf8), "features.json")
        assertMessage(try FeatureSpecification.load(path: json.path), "\(json.path): \(Self.jsonMessage)")
        let yaml = "features:\n  - name: says_the\n    regex: \"the\"\n"
        let marked = try withMark(Data(yaml.utf8), "features.yaml")
        let plain = work.appendingPathComponent("plain.yaml")
        try Data(yaml.utf8).write(to: plain)
        XCTAssertEqual(try FeatureSpecification.load(path: marked.path).regexFeatures.map(\.name), ["says_the"])
        XCTAssertEqual(try FeatureSpecification.load(path: marked.path), try FeatureSpecification.load(path: plain.path))
    }

    func testChatTemplateFilesNameTheMark() throws {
        let checkpoint = try Checkpoint.open(path: try ModelFixtures.checkpointPath("hf/gpt2", for: self))
        let jinja = try withMark(Data("{{ messages[0]['content'] }}".utf8), "template.jinja")
        assertMessage(try ChatFormatting(checkpoint: checkpoint, templatePath: jinja.path, date: Date()),
                      "--chat-template \(jinja.path): \(Self.templateMessage)")
        let json = try withMark(Data(#"{"chat_template": "{{ messages[0]['content'] }}"}"#.utf8), "tokenizer_config.json")
        assertMessage(try ChatFormatting(checkpoint: checkpoint, templatePath: json.path, date: Date()),
                      "--chat-template \(json.path): \(Self.jsonMessage)")
    }

    /// Data files skip the mark, in every layout (SampleFileTests checks JSON lines).
    func testDataFilesSkipTheMark() throws {
        let array = try SampleFile.parse(Self.bom + Data(#"[{"prompt": "a", "response": "b"}]"#.utf8), source: "d.json")
        XCTAssertEqual(array.map(\.prompt), [.text("a")])
        let csv = try SampleFile.parse(Self.bom + Data("prompt,response\na,b\n".utf8), source: "d.csv", fileExtension: "csv")
        XCTAssertEqual(csv.map(\.prompt), [.text("a")], "the first column is \"prompt\", not \"\\u{FEFF}prompt\"")
        let tsv = try SampleFile.parse(Self.bom + Data("prompt\tresponse\na\tb\n".utf8), source: "d.tsv", fileExtension: "tsv")
        XCTAssertEqual(tsv.map(\.response), [.text("b")])
        let lines = try withMark(Data(#"{"text": "hi"}"#.utf8), "records.jsonl")
        XCTAssertEqual(try TokenizationJSONLines.records(fromFile: lines.path).count, 1)
    }

    /// What the user sees: one line, naming the file.
    func testConvertPrintsOneLine() throws {
        let directory = work.appendingPathComponent("gpt2")
        try FileManager.default.copyItem(at: Fixtures.url("hf/gpt2"), to: directory)
        let config = directory.appendingPathComponent("config.json")
        try (Self.bom + Data(contentsOf: config)).write(to: config)
        let out = work.appendingPathComponent("out.h5")
        let result = try CommandRunner.run(["convert", directory.path, out.path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stderr, "irm: error: \(config.path): \(Self.jsonMessage)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
