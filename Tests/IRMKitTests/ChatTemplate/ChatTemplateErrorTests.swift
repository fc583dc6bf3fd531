import ChatTemplate
import Foundation
import XCTest

/// Bad and hostile templates: errors name the construct with its line and column, and limits
/// stop runaway templates with an error instead of a crash.
final class ChatTemplateErrorTests: XCTestCase {
    private func parseError(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source)
            XCTFail("expected a parse error for \(source.debugDescription)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func renderError(_ source: String, _ context: TemplateObject = TemplateObject(),
                             file: StaticString = #filePath, line: UInt = #line) -> ChatTemplateError? {
        do {
            let output = try ChatTemplate(source: source).render(context, now: ChatTemplateFixtures.fixedNow)
            XCTFail("expected a render error, got \(output.prefix(80).debugDescription)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testIncludeIsRefusedWithItsPosition() throws {
        let error = try XCTUnwrap(parseError("Hello\n  {% include 'other.jinja' %}"))
        XCTAssertTrue(error.message.contains("unsupported tag 'include'"), error.message)
        XCTAssertEqual(error.line, 2)
        XCTAssertEqual(error.column, 6)
        XCTAssertFalse(error.isRaisedByTemplate)
        XCTAssertTrue(error.description.contains("line 2, column 6"), error.description)
    }

    func testUnknownFilterAndTestAreParseErrors() throws {
        let filter = try XCTUnwrap(parseError("{{ x }}\n{{ messages | frobnicate }}"))
        XCTAssertTrue(filter.message.contains("unknown filter 'frobnicate'"), filter.message)
        XCTAssertEqual(filter.line, 2)
        XCTAssertEqual(filter.column, 15)
        let unsupported = try XCTUnwrap(parseError("{{ xs | groupby('a') }}"))
        XCTAssertTrue(unsupported.message.contains("unsupported filter 'groupby'"), unsupported.message)
        let test = try XCTUnwrap(parseError("{% if x is frobbed %}{% endif %}"))
        XCTAssertTrue(test.message.contains("unknown test 'frobbed'"), test.message)
        XCTAssertEqual(test.column, 12)
    }

    func testUnknownAndUnsupportedTags() throws {
        XCTAssertTrue(try XCTUnwrap(parseError("{% call foo() %}x{% endcall %}")).message.contains("unsupported tag 'call'"))
        let unknown = try XCTUnwrap(parseError("a\nb {% frob %}"))
        XCTAssertTrue(unknown.message.contains("unknown tag 'frob'"))
        XCTAssertEqual(unknown.line, 2)
        XCTAssertEqual(unknown.column, 6)
        XCTAssertTrue(try XCTUnwrap(parseError("{% endif %}")).message.contains("unexpected tag 'endif'"))
        XCTAssertTrue(try XCTUnwrap(parseError("{% break %}")).message.contains("outside of a for loop"))
    }

    func testUnterminatedConstructs() throws {
        let block = try XCTUnwrap(parseError("x\n{% if true %}never closed"))
        XCTAssertTrue(block.message.contains("'if' opened here is never closed"), block.message)
        XCTAssertEqual(block.line, 2)
        XCTAssertEqual(block.column, 1)
        let tag = try XCTUnwrap(parseError("ok {{ messages[0]"))
        XCTAssertTrue(tag.message.contains("missing '}}'"), tag.message)
        XCTAssertEqual(tag.column, 4)
        let string = try XCTUnwrap(parseError("{{ 'no end }}"))
        XCTAssertTrue(string.message.contains("unterminated string"), string.message)
        XCTAssertEqual(string.column, 4)
        XCTAssertTrue(try XCTUnwrap(parseError("{# open comment")).message.contains("missing '#}'"))
        XCTAssertTrue(try XCTUnwrap(parseError("{{ (1, 2 }}")).message.contains("unexpected '}'"))
    }

    func testRaiseExceptionKeepsTheTemplatesMessage() throws {
        let error = try XCTUnwrap(renderError("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
                                              ["messages": [["role": "system", "content": "x"]]]))
        XCTAssertTrue(error.isRaisedByTemplate)
        XCTAssertEqual(error.message, "System role not supported")
        XCTAssertEqual(error.line, 1)
    }

    func testRuntimeErrorsCarryPositions() throws {
        let error = try XCTUnwrap(renderError("line one\n{{ 1 + 'a' }}"))
        XCTAssertEqual(error.message, "unsupported operand type(s) for +: 'int' and 'str'")
        XCTAssertEqual(error.line, 2)
        let call = try XCTUnwrap(renderError("{{ 'abc'.zfill(5) }}"))
        XCTAssertTrue(call.message.contains("unsupported method 'zfill'"), call.message)
        let unsafe = try XCTUnwrap(renderError("{{ xs.append(1) }}", ["xs": [1]]))
        XCTAssertEqual(unsafe.message, "access to attribute 'append' of 'list' object is unsafe.")
    }

    func testDeepRecursionIsBounded() throws {
        let error = try XCTUnwrap(renderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"))
        XCTAssertTrue(error.message.contains("macro calls nest deeper"), error.message)
        let nested = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        XCTAssertTrue(try XCTUnwrap(parseError("{{ \(nested) }}")).message.contains("nests deeper"))
        let blocks = String(repeating: "{% if true %}", count: 200) + String(repeating: "{% endif %}", count: 200)
        XCTAssertTrue(try XCTUnwrap(parseError(blocks)).message.contains("nests deeper"))
    }

    func testHugeLoopsAndOutputsAreBounded() throws {
        XCTAssertTrue(try XCTUnwrap(renderError("{% for i in range(10000000) %}{% endfor %}")).message.contains("Range too big"))
        let loops = try XCTUnwrap(renderError(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))
        XCTAssertTrue(loops.message.contains("loop iterations"), loops.message)
        let text = try XCTUnwrap(renderError("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"))
        XCTAssertTrue(text.message.contains("bytes of text"), text.message)
        XCTAssertTrue(try XCTUnwrap(renderError("{{ 'x' * 100000000000 }}")).message.contains("bytes of text"))
        let deep = try XCTUnwrap(renderError("{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}"))
        XCTAssertTrue(deep.message.contains("nested deeper"), deep.message)
    }

    func testIntegerOverflowIsAnError() throws {
        XCTAssertTrue(try XCTUnwrap(renderError("{{ 9223372036854775807 + 1 }}")).message.contains("integer overflow"))
        XCTAssertTrue(try XCTUnwrap(parseError("{{ 99999999999999999999 }}")).message.contains("out of range"))
    }
}
