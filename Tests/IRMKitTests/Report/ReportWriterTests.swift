import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import IRMKit

final class ReportWriterTests: XCTestCase {
    func testCSVQuotingFollowsRFC4180() throws {
        var table = CSVTable(columns: ["id", "text", "value"])
        try table.append(["a", "plain", "1.5"])
        try table.append(["b", "has, comma", "-2"])
        try table.append(["c", "say \"hi\"\nnext line", "nan"])
        XCTAssertEqual(table.text, "id,text,value\na,plain,1.5\nb,\"has, comma\",-2\nc,\"say \"\"hi\"\"\nnext line\",nan\n")
        XCTAssertThrowsError(try table.append(["too", "few"])) { error in
            XCTAssertEqual("\(error)", "CSV row has 2 cells, expected 3 (id,text,value)")
        }
    }

    func testMarkdownCellsCannotBreakTheTable() {
        var table = MarkdownTable(header: ["feature", "coef"])
        table.append(["a|b", "1.0"])
        table.append(["line\nbreak", "2"])
        table.append(["short"])
        XCTAssertEqual(table.text, "| feature | coef |\n|:---|---:|\n| a\\|b | 1.0 |\n| line break | 2 |\n| short |  |\n")
    }

    func testNumberFormatsAreDeterministic() {
        XCTAssertEqual(NumberFormat.exact(0.1), "0.1")
        XCTAssertEqual(NumberFormat.exact(-0.0), "0")
        XCTAssertEqual(NumberFormat.exact(.nan), "nan")
        XCTAssertEqual(NumberFormat.exact(-.infinity), "-inf")
        XCTAssertEqual(NumberFormat.exact(1e-20), "1e-20")
        XCTAssertEqual(NumberFormat.significant(0.012345), "0.0123")
        XCTAssertEqual(NumberFormat.significant(12.345), "12.3")
        XCTAssertEqual(NumberFormat.significant(123456789), "1.23e+08")
        XCTAssertEqual(NumberFormat.significant(-0.00001234), "-1.23e-05")
        XCTAssertEqual(NumberFormat.fixed(-0.0001, decimals: 2), "0.00")
        XCTAssertEqual(NumberFormat.pValue(0.0004), "<0.001")
        XCTAssertEqual(NumberFormat.pValue(0.04567), "0.046")
    }

    /// Parses an SVG as XML and counts elements by name.
    func elementCounts(_ svg: String) throws -> [String: Int] {
        let document = try XMLDocument(data: Data(svg.utf8))
        var counts: [String: Int] = [:]
        func walk(_ node: XMLNode) {
            if node.kind == .element, let name = node.name { counts[name, default: 0] += 1 }
            for child in node.children ?? [] { walk(child) }
        }
        if let root = document.rootElement() { walk(root) }
        return counts
    }

    func testChartsAreWellFormedSVGWithOneMarkPerDatum() throws {
        let points = (0..<50).map { i in (x: Double(i), y: 0.5 * Double(i) + sin(Double(i))) } + [(x: .nan, y: 1)]
        let scatter = SVGChart.scatter(title: "implicit reward vs <RM>", xLabel: "RM score", yLabel: "reward (nats)", points: points)
        let counts = try elementCounts(scatter)
        XCTAssertEqual(counts["circle"], 50, "one circle per finite point")
        XCTAssertTrue(scatter.contains("implicit reward vs &lt;RM&gt;"))
        XCTAssertEqual(scatter, SVGChart.scatter(title: "implicit reward vs <RM>", xLabel: "RM score", yLabel: "reward (nats)", points: points))

        let bars = SVGChart.bars(title: "coefficients", valueLabel: "std coef",
                                 bars: [.init(label: "length", value: 0.8, interval: 0.6...1.0),
                                        .init(label: "vader_sum", value: -0.3, interval: -0.5...(-0.1)),
                                        .init(label: "no_ci", value: 0.1)])
        let barCounts = try elementCounts(bars)
        XCTAssertEqual(barCounts["rect"], 2 + 3, "background, frame and one bar each")
        let lines = SVGChart.lines(title: "drift", xLabel: "step", yLabel: "corr",
                                   series: [.init(name: "pearson", points: [(0, 0.1), (100, 0.4), (200, 0.5)]),
                                            .init(name: "kendall", points: [(0, 0.05), (100, 0.3), (200, 0.35)])])
        let lineCounts = try elementCounts(lines)
        XCTAssertEqual(lineCounts["polyline"], 2)
        XCTAssertEqual(lineCounts["circle"], 6)
    }

    func testAxisTicksAreRoundNumbersCoveringTheData() {
        let axis = SVGChart.Axis(values: [0.13, 7.9], includeZero: false)
        XCTAssertEqual(axis.ticks, [0, 2, 4, 6, 8])
        XCTAssertLessThanOrEqual(axis.low, 0.13)
        XCTAssertGreaterThanOrEqual(axis.high, 7.9)
        let flat = SVGChart.Axis(values: [3, 3], includeZero: false)
        XCTAssertLessThan(flat.low, flat.high)
    }

    func testHTMLEscapesUserText() {
        var page = HTMLDocument(title: "irm <report>")
        page.paragraph("a & b < c")
        page.table(header: ["feature", "coef"], rows: [["<script>", "1"]])
        XCTAssertTrue(page.text.contains("a &amp; b &lt; c"))
        XCTAssertTrue(page.text.contains("&lt;script&gt;"))
        XCTAssertFalse(page.text.contains("<script>"))
    }
}
