/// A single self-contained HTML page (inline CSS and SVG, no scripts), for reports that people open
/// in a browser.
public struct HTMLDocument: Sendable {
    public let title: String
    private var body: [String] = []

    public init(title: String) { self.title = title }

    public mutating func heading(_ text: String, level: Int = 2) {
        let l = min(max(level, 1), 6)
        body.append("<h\(l)>\(SVGChart.escape(text))</h\(l)>")
    }

    public mutating func paragraph(_ text: String) {
        body.append("<p>\(SVGChart.escape(text))</p>")
    }

    /// Preformatted text, e.g. a formula.
    public mutating func code(_ text: String) {
        body.append("<pre>\(SVGChart.escape(text))</pre>")
    }

    public mutating func table(header: [String], rows: [[String]]) {
        var html = "<table><thead><tr>" + header.map { "<th>\(SVGChart.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows {
            html += "<tr>" + row.enumerated().map { index, cell in
                index == 0 ? "<td>\(SVGChart.escape(cell))</td>" : "<td class=\"n\">\(SVGChart.escape(cell))</td>"
            }.joined() + "</tr>"
        }
        body.append(html + "</tbody></table>")
    }

    /// An SVG produced by `SVGChart`, embedded inline.
    public mutating func figure(svg: String, caption: String) {
        body.append("<figure>\(svg)<figcaption>\(SVGChart.escape(caption))</figcaption></figure>")
    }

    public var text: String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(SVGChart.escape(title))</title>
        <style>
        body{font-family:Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
        table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
        td.n{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
        figure{margin:1.2em 0}figcaption{font-size:12px;color:#555}
        </style></head><body>
        <h1>\(SVGChart.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </body></html>

        """
    }
}
