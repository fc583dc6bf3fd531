import Foundation
import XCTest
@testable import IRMKit

/// A text cell that a spreadsheet would run as a formula gets a leading `'`; numbers never change;
/// the documented pandas rule undoes it exactly (docs/analysis-outputs.md).
final class CSVInjectionTests: XCTestCase {
    func testTextCellsThatLookLikeFormulasAreNeutralised() {
        let cases: [(String, String)] = [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1+2", "'+1+2"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
            ("'=x", "''=x"), ("''-x", "'''-x"), ("-", "'-"), ("+5", "'+5"), ("- 1", "'- 1"), ("-1-", "'-1-"),
            // Numbers, and text that is a number, stay as they are.
            ("-0.5", "-0.5"), ("-1e-05", "-1e-05"), ("1.5e+20", "1.5e+20"), ("-3", "-3"), ("-inf", "-inf"), ("nan", "nan"), ("12", "12"),
            // Nothing to neutralise.
            ("plain", "plain"), ("'quoted", "'quoted"), ("", ""), ("a=b", "a=b"), ("'", "'"),
        ]
        for (cell, expected) in cases {
            XCTAssertEqual(CSVTable.neutralised(cell), expected, cell.debugDescription)
        }
    }

    /// `df[col].str.replace(r"^'(?='*[=+\-@\t\r])", "", regex=True)`, as the docs give it.
    static func undo(_ cell: String) throws -> String {
        let pattern = try NSRegularExpression(pattern: "^'(?='*[=+\\-@\\t\\r])")
        return pattern.stringByReplacingMatches(in: cell, range: NSRange(cell.startIndex..., in: cell), withTemplate: "")
    }

    func testThePandasRuleUndoesItExactly() throws {
        let cells = ["=1+2", "'=1+2", "''@x", "-0.5", "-x", "'plain", "plain", "'", "''", "\t-", "-inf", "=", "'+", "@"]
        for cell in cells {
            XCTAssertEqual(try Self.undo(CSVTable.neutralised(cell)), cell, cell.debugDescription)
        }
    }

    func testQuotingComesAfterNeutralisingAndCoversCRLF() throws {
        var table = CSVTable(columns: ["id", "=header", "value"])
        try table.append(["=cmd|' /C calc'!A0", "a\r\nb", "-0.25"])
        XCTAssertEqual(table.text, "id,'=header,value\n'=cmd|' /C calc'!A0,\"a\r\nb\",-0.25\n")
    }

    func testSamplesCSVNeutralisesIDsAndFeatureNamesButNotNumbers() throws {
        let id = "=HYPERLINK(\"http://attacker.example\",\"open\")"
        let result = try AnalysisReportTests.makeResult(.init(firstID: id, numericFeature: "@score"))
        let files = try AnalysisReport.files(for: result)
        let (header, rows) = AnalysisReportTests.records(try AnalysisReportTests.text(files, "samples.csv"))
        XCTAssertEqual(rows[0]["id"], "'" + id)
        XCTAssertTrue(header.contains("'@score"), "\(header)")
        XCTAssertFalse(header.contains("@score"), "\(header)")
        // Negative numbers are written as numbers.
        let values = rows.compactMap { $0["'@score"] }
        XCTAssertEqual(values.count, rows.count)
        XCTAssertTrue(values.contains { $0.hasPrefix("-") }, "\(values)")
        XCTAssertTrue(values.allSatisfy { Double($0) != nil }, "\(values)")
        let rewards = rows.compactMap { $0["implicit_reward"] }
        XCTAssertTrue(rewards.contains { $0.hasPrefix("-") } && rewards.allSatisfy { Double($0) != nil }, "\(rewards)")
        // attribution.csv names the feature the same way.
        let attribution = AnalysisReportTests.records(try AnalysisReportTests.text(files, "attribution.csv")).rows
        XCTAssertTrue(attribution.contains { $0["feature"] == "'@score" })
        XCTAssertFalse(attribution.contains { $0["feature"] == "@score" })
    }
}
