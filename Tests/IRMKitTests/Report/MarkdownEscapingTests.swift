import Foundation
import XCTest
@testable import IRMKit

/// Names and values from the inputs show as text in report.md and report.html: they cannot add
/// HTML, links or blocks, or break a table.
final class MarkdownEscapingTests: XCTestCase {
    func testEscapingChangesOnlyWhatCouldActAsMarkup() {
        XCTAssertEqual(MarkdownText.escape("a|b<script>alert(1)</script>"), "a|b&lt;script>alert(1)&lt;/script>")
        XCTAssertEqual(MarkdownText.escape("[click](javascript:x) ![i](http://t/p.png) [a][b]"),
                       "[click]&#40;javascript:x) ![i]&#40;http://t/p.png) [a]&#91;b]")
        XCTAssertEqual(MarkdownText.escape("<!-- hide --> &amp; <?x"), "&lt;!-- hide --> &amp;amp; &lt;?x")
        XCTAssertEqual(MarkdownText.escape("one\ntwo\r\nthree"), "one two three")
        XCTAssertEqual(MarkdownText.escape("# heading", atBlockStart: true), "&#35; heading")
        XCTAssertEqual(MarkdownText.escape("[x]: http://evil", atBlockStart: true), "&#91;x]: http://evil")
        XCTAssertEqual(MarkdownText.escape("- item", atBlockStart: true), "&#45; item")
        XCTAssertEqual(MarkdownText.escape("# not at the start"), "# not at the start")
        // The report's own prose passes unchanged.
        for prose in ["p < 0.05 (HC3)", "Kim & Seo", "[0.025, 0.975]", "P>|t|", "z(implicit) − z(RM)", "r_t = β·(log π_after − log π_before)",
                      "95% CI [0.1, 0.2] (bootstrap)", "-0.5", "<0.001"] {
            XCTAssertEqual(MarkdownText.escape(prose), prose)
        }
        XCTAssertEqual(MarkdownText.escape("The fit is undefined: [reason].", atBlockStart: true), "The fit is undefined: [reason].")
    }

    func testAFeatureNameFromAFeaturesFileShowsAsTextInTheReport() throws {
        let name = "a|b<script>alert(1)</script>[x](http://evil)"
        let result = try AnalysisReportTests.makeResult(.init(numericFeature: name))
        let files = try AnalysisReport.files(for: result)
        let markdown = try AnalysisReportTests.text(files, "report.md")
        XCTAssertTrue(markdown.contains("a\\|b&lt;script>alert(1)&lt;/script>[x]&#40;http://evil)"), "the name, escaped, in a table")
        XCTAssertFalse(markdown.contains("<script>"))
        XCTAssertFalse(markdown.contains("](http://evil"))
        // Every row of every table keeps its cell count.
        var columns: Int? = nil
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("|") else { columns = nil; continue }
            let cells = line.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count
            if let columns { XCTAssertEqual(cells, columns, String(line)) } else { columns = cells }
        }
        let html = try AnalysisReportTests.text(files, "report.html")
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("a|b&lt;script&gt;alert(1)&lt;/script&gt;"))
        for svg in files where svg.path.hasSuffix(".svg") {
            XCTAssertFalse(String(decoding: svg.data, as: UTF8.self).contains("<script>"), svg.path)
        }
    }
}
