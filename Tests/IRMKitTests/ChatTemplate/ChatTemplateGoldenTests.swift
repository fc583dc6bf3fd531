import ChatTemplate
import Foundation
import XCTest

/// Every golden case made by transformers' `apply_chat_template` must render byte for byte the
/// same, and every case where transformers raised must raise here too (with the same message when
/// the template raised it itself).
final class ChatTemplateGoldenTests: XCTestCase {
    func testEveryGoldenCaseMatchesTransformers() throws {
        let directory = Fixtures.url("chat-templates/goldens")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 22, "expected the 20 shared templates and the extra ones")
        var checked = 0, outputs = 0, raised = 0
        for file in files {
            let golden = try ChatTemplateFixtures.json("goldens/" + file)
            let name = try XCTUnwrap(golden["template"]?.stringValue)
            let template: ChatTemplate
            do {
                template = try ChatTemplate(source: try ChatTemplateFixtures.templateSource(name))
            } catch {
                XCTFail("\(name): the template does not parse: \(error)")
                continue
            }
            for item in try XCTUnwrap(golden["cases"]?.arrayValue) {
                checked += 1
                let caseName = "\(name) [\(item["name"]?.stringValue ?? "?")]"
                let context = try Self.context(of: item)
                let expectedOutput = item["output"]?.stringValue
                do {
                    let output = try template.render(context, now: ChatTemplateFixtures.fixedNow)
                    guard let expectedOutput else {
                        XCTFail("\(caseName): transformers raised \(item["error_type"]?.stringValue ?? "") "
                            + "'\(item["error"]?.stringValue ?? "")' but this rendered \(output.debugDescription)")
                        continue
                    }
                    if let difference = firstDifference(output, expectedOutput) {
                        XCTFail("\(caseName): \(difference)")
                    } else {
                        outputs += 1
                    }
                } catch {
                    guard expectedOutput == nil, let expectedError = item["error"]?.stringValue else {
                        XCTFail("\(caseName): transformers rendered, this raised \(error)")
                        continue
                    }
                    let errorType = item["error_type"]?.stringValue
                    if errorType == "TemplateError" {
                        XCTAssertTrue(error.isRaisedByTemplate, "\(caseName): expected raise_exception, got \(error)")
                        XCTAssertEqual(error.message, expectedError, caseName)
                    } else {
                        XCTAssertFalse(error.isRaisedByTemplate, "\(caseName): \(error)")
                        if errorType == "UndefinedError" { XCTAssertEqual(error.message, expectedError, caseName) }
                    }
                    raised += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000, "the goldens hold fewer cases than they were made with")
        XCTAssertGreaterThan(outputs, 800)
        XCTAssertGreaterThan(raised, 100)
    }

    /// The context apply_chat_template builds for one golden case.
    static func context(of item: TemplateValue) throws -> TemplateObject {
        var specialTokens: [String: String] = [:]
        for (key, value) in item["special_tokens"]?.objectValue?.pairs ?? [] {
            specialTokens[key] = value.stringValue
        }
        var extra = item["extra"]?.objectValue?.pairs ?? []
        if let documents = item["documents"] { extra.insert(("documents", documents), at: 0) }
        return ChatTemplate.chatContext(
            messages: try XCTUnwrap(item["messages"]?.arrayValue),
            addGenerationPrompt: try XCTUnwrap(item["add_generation_prompt"]?.boolValue),
            specialTokens: specialTokens,
            tools: item["tools"]?.arrayValue,
            extra: extra)
    }

    /// The goldens must exercise what they claim: tools, raised messages and non-ASCII text.
    func testGoldensCoverToolsRaisesAndNonASCII() throws {
        let qwen = try ChatTemplateFixtures.json("goldens/qwen2.5-7b-instruct.json")
        let cases = try XCTUnwrap(qwen["cases"]?.arrayValue)
        XCTAssertTrue(cases.contains { $0["tools"] != nil && ($0["output"]?.stringValue?.contains("<tools>") ?? false) })
        XCTAssertTrue(cases.contains { $0["output"]?.stringValue?.contains("日本語") ?? false })
        let gemma = try ChatTemplateFixtures.json("goldens/gemma-7b-it.json")
        XCTAssertTrue(try XCTUnwrap(gemma["cases"]?.arrayValue).contains {
            $0["error"]?.stringValue == "System role not supported"
        })
    }
}
