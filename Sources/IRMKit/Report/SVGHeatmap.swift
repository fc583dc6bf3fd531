import Foundation

/// A self-contained SVG heatmap for reports, in the style of `SVGChart`: no scripts, no external
/// fonts, and byte-identical output for the same input.
///
/// Rows and columns are drawn in the order given. Each cell's colour maps its value v linearly onto
/// a sequential white-to-blue scale (ColorBrewer "Blues", 9 classes, interpolated in sRGB):
///
///     t = clamp((v − low) / (high − low), 0, 1)
///
/// where [low, high] is `range`, or else [min(0, smallest value), largest value]. A legend shows
/// the scale; every cell carries its row, column and value in a `<title>` (a tooltip in browsers),
/// and, when the cells are wide enough, the value printed in the cell. Missing and non-finite values
/// are grey cells marked "undefined".
public enum SVGHeatmap {
    /// ColorBrewer Blues (9 classes), from low to high.
    static let scale: [(r: Double, g: Double, b: Double)] = [
        (247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
        (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107),
    ]
    static let undefinedColour = "#d9d9d9"

    /// Renders a grid with one row of `values` per row label and one value per column label.
    /// Throws when the grid's shape disagrees with the labels.
    public static func render(title: String, rowLabels: [String], columnLabels: [String], values: [[Double?]],
                              xLabel: String, yLabel: String? = nil, valueLabel: String, range: ClosedRange<Double>? = nil,
                              cellWidth: Int = 56, cellHeight: Int = 22, annotate: Bool = true) throws -> String {
        guard values.count == rowLabels.count else {
            throw IRMError("heatmap \"\(title)\": \(values.count) rows of values for \(rowLabels.count) row labels; expected one row per label")
        }
        if let bad = values.firstIndex(where: { $0.count != columnLabels.count }) {
            throw IRMError("heatmap \"\(title)\": row \(bad) (\(rowLabels[bad])) has \(values[bad].count) values for \(columnLabels.count) columns; expected one per column")
        }
        guard cellWidth >= 4, cellHeight >= 4 else {
            throw IRMError("heatmap \"\(title)\": cells must be at least 4×4 pixels, found \(cellWidth)×\(cellHeight)")
        }
        let finite = values.flatMap { $0 }.compactMap { $0 }.filter(\.isFinite)
        var low = range?.lowerBound ?? min(0, finite.min() ?? 0)
        var high = range?.upperBound ?? (finite.max() ?? 1)
        if !low.isFinite { low = 0 }
        if !(high.isFinite && high > low) { high = low + 1 }
        let anyUndefined = values.contains { $0.contains { !($0?.isFinite ?? false) } }

        let columns = columnLabels.count, rows = rowLabels.count
        let labelWidth = min(max((rowLabels.map(\.count).max() ?? 4) * 7 + 12, 60), 240)
        let left = labelWidth + (yLabel == nil ? 0 : 24)
        let top = 48
        let gridWidth = columns * cellWidth, gridHeight = rows * cellHeight
        let longestColumn = columnLabels.map(\.count).max() ?? 0
        let rotate = Double(longestColumn) * 6.5 > Double(cellWidth - 6)
        let columnLabelHeight = rotate ? Int((Double(longestColumn) * 6.5 * 0.71).rounded(.up)) + 18 : 18
        let xLabelY = top + gridHeight + columnLabelHeight + 16
        let legendHeight = max(min(gridHeight, 200), 100)
        let legendBottom = top + legendHeight + (anyUndefined ? 28 : 0)
        let legendX = left + gridWidth + 20
        let width = max(legendX + max(84, valueLabel.count * 7 + 8), title.count * 8 + 24)
        let height = max(xLabelY + 12, legendBottom + 12)

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(width / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(SVGChart.escape(title))</text>\n"

        for (r, row) in values.enumerated() {
            let y = top + r * cellHeight
            svg += "<text x=\"\(left - 6)\" y=\"\(SVGChart.f(Double(y) + Double(cellHeight) / 2 + 4))\" text-anchor=\"end\" font-size=\"11\">\(SVGChart.escape(rowLabels[r]))</text>\n"
            for (c, value) in row.enumerated() {
                let x = left + c * cellWidth
                let defined = value.flatMap { $0.isFinite ? $0 : nil }
                let colour = defined.map { Self.colour(($0 - low) / (high - low)) } ?? undefinedColour
                let shown = defined.map { NumberFormat.significant($0, digits: 4) } ?? "undefined"
                let tooltip = "\(rowLabels[r]), \(columnLabels[c]): \(shown)"
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellWidth)\" height=\"\(cellHeight)\" fill=\"\(colour)\" stroke=\"white\"><title>\(SVGChart.escape(tooltip))</title></rect>\n"
                if annotate, cellWidth >= 36, cellHeight >= 14, let defined {
                    let ink = Self.luminance(colour) < 0.5 ? "white" : "#222"
                    svg += "<text x=\"\(SVGChart.f(Double(x) + Double(cellWidth) / 2))\" y=\"\(SVGChart.f(Double(y) + Double(cellHeight) / 2 + 3.5))\" "
                        + "text-anchor=\"middle\" font-size=\"10\" fill=\"\(ink)\">\(SVGChart.escape(NumberFormat.significant(defined, digits: 2)))</text>\n"
                }
            }
        }
        if rows == 0 || columns == 0 {
            svg += "<text x=\"\(left + 8)\" y=\"\(top + 16)\" font-size=\"12\" fill=\"#666\">no data</text>\n"
        } else {
            svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(gridWidth)\" height=\"\(gridHeight)\" fill=\"none\" stroke=\"#999\"/>\n"
        }

        let labelY = top + gridHeight + (rotate ? 10 : 14)
        for (c, label) in columnLabels.enumerated() {
            let cx = SVGChart.f(Double(left + c * cellWidth) + Double(cellWidth) / 2)
            if rotate {
                svg += "<text x=\"\(cx)\" y=\"\(labelY)\" text-anchor=\"end\" font-size=\"11\" transform=\"rotate(-45 \(cx) \(labelY))\">\(SVGChart.escape(label))</text>\n"
            } else {
                svg += "<text x=\"\(cx)\" y=\"\(labelY)\" text-anchor=\"middle\" font-size=\"11\">\(SVGChart.escape(label))</text>\n"
            }
        }
        svg += "<text x=\"\(left + gridWidth / 2)\" y=\"\(xLabelY)\" text-anchor=\"middle\" font-size=\"12\">\(SVGChart.escape(xLabel))</text>\n"
        if let yLabel {
            let cy = top + gridHeight / 2
            svg += "<text x=\"14\" y=\"\(cy)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 \(cy))\">\(SVGChart.escape(yLabel))</text>\n"
        }

        // The legend: the scale from high (top) to low (bottom), in 20 bands.
        svg += "<text x=\"\(legendX)\" y=\"\(top - 12)\" font-size=\"11\">\(SVGChart.escape(valueLabel))</text>\n"
        let bands = 20
        let bandHeight = Double(legendHeight) / Double(bands)
        for band in 0..<bands {
            let t = 1 - (Double(band) + 0.5) / Double(bands)
            svg += "<rect x=\"\(legendX)\" y=\"\(SVGChart.f(Double(top) + Double(band) * bandHeight))\" width=\"14\" height=\"\(SVGChart.f(bandHeight + 0.5))\" fill=\"\(Self.colour(t))\"/>\n"
        }
        svg += "<rect x=\"\(legendX)\" y=\"\(top)\" width=\"14\" height=\"\(legendHeight)\" fill=\"none\" stroke=\"#999\"/>\n"
        for (fraction, value) in [(0.0, high), (0.5, (low + high) / 2), (1.0, low)] {
            let y = Double(top) + fraction * Double(legendHeight)
            svg += SVGChart.line(Double(legendX + 14), y, Double(legendX + 18), y, stroke: "#444", dash: false)
            svg += "<text x=\"\(legendX + 21)\" y=\"\(SVGChart.f(y + 4))\" font-size=\"10\">\(SVGChart.escape(NumberFormat.significant(value, digits: 3)))</text>\n"
        }
        if anyUndefined {
            let y = top + legendHeight + 12
            svg += "<rect x=\"\(legendX)\" y=\"\(y)\" width=\"14\" height=\"10\" fill=\"\(undefinedColour)\" stroke=\"#999\"/>"
            svg += "<text x=\"\(legendX + 21)\" y=\"\(y + 9)\" font-size=\"10\">undefined</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// The scale's colour at t ∈ [0, 1] (clamped; NaN maps to 0), as `#rrggbb`.
    public static func colour(_ t: Double) -> String {
        let clamped = t.isNaN ? 0 : min(max(t, 0), 1)
        let position = clamped * Double(scale.count - 1)
        let index = min(Int(position.rounded(.down)), scale.count - 2)
        let fraction = position - Double(index)
        let a = scale[index], b = scale[index + 1]
        func hex(_ x: Double, _ y: Double) -> String {
            let value = Int((x + (y - x) * fraction).rounded())
            let text = String(min(max(value, 0), 255), radix: 16)
            return text.count == 1 ? "0" + text : text
        }
        return "#" + hex(a.r, b.r) + hex(a.g, b.g) + hex(a.b, b.b)
    }

    /// Relative luminance (Rec. 709 weights on the sRGB components, without linearisation) of a
    /// `#rrggbb` colour, in [0, 1]: enough to choose dark or light text on a cell.
    static func luminance(_ colour: String) -> Double {
        let digits = Array(colour.dropFirst())
        guard digits.count == 6 else { return 1 }
        func component(_ at: Int) -> Double { Double(Int(String(digits[at..<(at + 2)]), radix: 16) ?? 255) / 255 }
        return 0.2126 * component(0) + 0.7152 * component(2) + 0.0722 * component(4)
    }
}
