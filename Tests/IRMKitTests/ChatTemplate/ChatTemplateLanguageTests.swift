import ChatTemplate
import Foundation
import XCTest

/// One language feature per template (whitespace control, trim_blocks/lstrip_blocks, loops,
/// slicing, namespace, macros, tojson, Python str() forms, filters, tests); the expected text is
/// what jinja2 rendered in transformers' environment (Tests/Fixtures/chat-templates/language.json).
final class ChatTemplateLanguageTests: XCTestCase {
    func testLanguageCasesMatchJinja2() throws {
        let cases = try XCTUnwrap(try ChatTemplateFixtures.json("language.json")["cases"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        for item in cases {
            let source = try XCTUnwrap(item["template"]?.stringValue)
            let context = item["context"]?.objectValue ?? TemplateObject()
            do {
                let output = try ChatTemplate(source: source).render(context, now: ChatTemplateFixtures.fixedNow)
                guard let expected = item["output"]?.stringValue else {
                    XCTFail("\(source.debugDescription): jinja2 raised '\(item["error"]?.stringValue ?? "")', this rendered \(output.debugDescription)")
                    continue
                }
                if let difference = firstDifference(output, expected) { XCTFail("\(source.debugDescription): \(difference)") }
            } catch {
                guard let expectedError = item["error"]?.stringValue else {
                    XCTFail("\(source.debugDescription): jinja2 rendered, this raised \(error)")
                    continue
                }
                XCTAssertEqual(error.message, expectedError, source)
                XCTAssertEqual(error.isRaisedByTemplate, item["error_type"]?.stringValue == "TemplateError", source)
            }
        }
    }

    private func render(_ source: String, _ context: TemplateObject = TemplateObject()) throws -> String {
        try ChatTemplate(source: source).render(context, now: ChatTemplateFixtures.fixedNow)
    }

    func testTrimAndLstripBlocks() throws {
        XCTAssertEqual(try render("{% if true %}\n  A\n{% endif %}\n"), "  A\n")
        XCTAssertEqual(try render("  {% if true %}A{% endif %}\n  B"), "A  B", "trim_blocks eats the newline after %}")
        XCTAssertEqual(try render("  {{ 'v' }}\n"), "  v", "variables are not lstripped; one trailing newline goes")
        XCTAssertEqual(try render("x\n{%- if true %}\ny{% endif -%}\n\n z"), "xyz")
    }

    func testPythonStringForms() throws {
        let context: TemplateObject = ["v": ["a'b", 1, 2.0, .none, true, ["k": "v"]]]
        XCTAssertEqual(try render("{{ v }}", context), "[\"a'b\", 1, 2.0, None, True, {'k': 'v'}]")
        XCTAssertEqual(try render("{{ v | tojson }}", context), "[\"a'b\", 1, 2.0, null, true, {\"k\": \"v\"}]")
        XCTAssertEqual(try render("{{ 0.1 + 0.2 }} {{ 1e22 }} {{ -0.0 }} {{ 1/3 }}"),
                       "0.30000000000000004 1e+22 -0.0 0.3333333333333333")
        XCTAssertEqual(try render("{{ '\\t\\u00e9\\x00' | list }}"), "['\\t', 'é', '\\x00']")
    }

    func testObjectKeysKeepInsertionOrder() throws {
        let context: TemplateObject = ["d": .object(TemplateObject([("z", 1), ("a", 2), ("m", 3)]))]
        XCTAssertEqual(try render("{{ d | tojson }}|{% for k in d %}{{ k }}{% endfor %}", context), "{\"z\": 1, \"a\": 2, \"m\": 3}|zam")
    }

    func testJSONReaderKeepsOrderAndNumberKinds() throws {
        let value = try ChatTemplateFixtures.parseOrderedJSON(Data(#"{"b": 1, "a": [1.0, 2e3, -0, "\u00e9\ud83d\ude00"], "c": null}"#.utf8))
        XCTAssertEqual(value.objectValue?.keys, ["b", "a", "c"])
        XCTAssertEqual(value["a"], [.double(1.0), .double(2000), .int(0), "é😀"])
        XCTAssertEqual(value["c"], TemplateValue.none)
        XCTAssertThrowsError(try ChatTemplateFixtures.parseOrderedJSON(Data("{\"a\": }".utf8)))
    }

    func testChatContextNormalisesMessagesLikeTransformers() throws {
        let context = ChatTemplate.chatContext(
            messages: [["role": "assistant", "content": .none, "reasoning_content": "r"]],
            addGenerationPrompt: true, specialTokens: ["eos_token": "</s>"], extra: [("enable_thinking", false)])
        let rendered = try render(
            "{{ messages[0] }}|{{ tools }}|{{ documents }}|{{ eos_token }}|{{ bos_token is defined }}|{{ enable_thinking }}|{{ add_generation_prompt }}",
            context)
        XCTAssertEqual(rendered, "{'thinking': 'r', 'role': 'assistant', 'reasoning_content': 'r'}|None|None|</s>|False|False|True")
    }
}
