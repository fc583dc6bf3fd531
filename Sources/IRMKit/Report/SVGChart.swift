import Foundation

/// Self-contained SVG charts for reports: no scripts, no external fonts, deterministic output.
public enum SVGChart {
    public struct Series: Sendable {
        public let name: String
        public let points: [(x: Double, y: Double)]
        /// An interval around the line at each x (e.g. a 95% confidence interval), drawn as a
        /// translucent band; empty for none.
        public let band: [(x: Double, low: Double, high: Double)]
        public init(name: String, points: [(x: Double, y: Double)], band: [(x: Double, low: Double, high: Double)] = []) {
            self.name = name
            self.points = points
            self.band = band
        }
    }

    public struct Bar: Sendable {
        public let label: String
        public let value: Double
        /// An interval drawn as a whisker, e.g. a 95% confidence interval.
        public let interval: ClosedRange<Double>?
        public init(label: String, value: Double, interval: ClosedRange<Double>? = nil) {
            self.label = label
            self.value = value
            self.interval = interval
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]

    /// A scatter plot, with an optional least-squares line and an optional y = x diagonal.
    public static func scatter(title: String, xLabel: String, yLabel: String, points: [(x: Double, y: Double)],
                               fitLine: Bool = true, diagonal: Bool = false, width: Int = 560, height: Int = 420) -> String {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        var frame = Frame(width: width, height: height, left: 64, right: 16, top: 36, bottom: 52,
                          xs: finite.map(\.x), ys: finite.map(\.y), includeZeroX: false, includeZeroY: false)
        if diagonal {
            let low = min(frame.xAxis.low, frame.yAxis.low), high = max(frame.xAxis.high, frame.yAxis.high)
            frame = Frame(width: width, height: height, left: 64, right: 16, top: 36, bottom: 52,
                          xs: [low, high], ys: [low, high], includeZeroX: false, includeZeroY: false)
        }
        var svg = frame.open(title: title, xLabel: xLabel, yLabel: yLabel)
        if diagonal {
            let a = frame.xAxis.low, b = frame.xAxis.high
            svg += line(frame.px(a), frame.py(a), frame.px(b), frame.py(b), stroke: "#999", dash: true)
        }
        let radius = finite.count > 2000 ? 1.2 : (finite.count > 300 ? 2.0 : 3.0)
        for p in finite {
            svg += "<circle cx=\"\(f(frame.px(p.x)))\" cy=\"\(f(frame.py(p.y)))\" r=\"\(f(radius))\" fill=\"\(palette[0])\" fill-opacity=\"0.55\"/>\n"
        }
        if fitLine, finite.count >= 2 {
            let n = Double(finite.count)
            let mx = finite.map(\.x).reduce(0, +) / n, my = finite.map(\.y).reduce(0, +) / n
            let sxx = finite.reduce(0) { $0 + ($1.x - mx) * ($1.x - mx) }
            let sxy = finite.reduce(0) { $0 + ($1.x - mx) * ($1.y - my) }
            if sxx > 0 {
                let slope = sxy / sxx, intercept = my - slope * mx
                let a = frame.xAxis.low, b = frame.xAxis.high
                svg += line(frame.px(a), frame.py(frame.yAxis.clamp(intercept + slope * a)),
                            frame.px(b), frame.py(frame.yAxis.clamp(intercept + slope * b)), stroke: palette[1], dash: false)
            }
        }
        return svg + "</svg>\n"
    }

    /// Horizontal bars with optional interval whiskers, in the order given, with a zero line.
    public static func bars(title: String, valueLabel: String, bars: [Bar], width: Int = 560) -> String {
        let rowHeight = 22
        let height = 36 + 52 + max(bars.count, 1) * rowHeight
        let labelWidth = min(max((bars.map(\.label.count).max() ?? 8) * 7 + 12, 80), 240)
        var values = bars.map(\.value)
        for bar in bars { if let i = bar.interval { values += [i.lowerBound, i.upperBound] } }
        let frame = Frame(width: width, height: height, left: labelWidth, right: 16, top: 36, bottom: 52,
                          xs: values.filter(\.isFinite), ys: [0, Double(max(bars.count, 1))], includeZeroX: true, includeZeroY: true)
        var svg = frame.open(title: title, xLabel: valueLabel, yLabel: nil, yTicks: false)
        let zero = frame.px(0)
        svg += line(zero, Double(frame.top), zero, Double(height - frame.bottom), stroke: "#444", dash: false)
        for (index, bar) in bars.enumerated() {
            let y = Double(frame.top + index * rowHeight)
            let centre = y + Double(rowHeight) / 2
            svg += "<text x=\"\(labelWidth - 6)\" y=\"\(f(centre + 4))\" text-anchor=\"end\" font-size=\"11\">\(escape(bar.label))</text>\n"
            if bar.value.isFinite {
                let x0 = min(zero, frame.px(bar.value)), x1 = max(zero, frame.px(bar.value))
                let colour = bar.value >= 0 ? palette[0] : palette[1]
                svg += "<rect x=\"\(f(x0))\" y=\"\(f(y + 4))\" width=\"\(f(max(x1 - x0, 0.5)))\" height=\"\(rowHeight - 8)\" fill=\"\(colour)\" fill-opacity=\"0.75\"/>\n"
            }
            if let interval = bar.interval, interval.lowerBound.isFinite, interval.upperBound.isFinite {
                let a = frame.px(interval.lowerBound), b = frame.px(interval.upperBound)
                svg += line(a, centre, b, centre, stroke: "#222", dash: false)
                svg += line(a, centre - 4, a, centre + 4, stroke: "#222", dash: false)
                svg += line(b, centre - 4, b, centre + 4, stroke: "#222", dash: false)
            }
        }
        return svg + "</svg>\n"
    }

    /// Lines with markers for several series over a shared x axis, with a legend.
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], width: Int = 560, height: Int = 380) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
        let ys = (series.flatMap { $0.points.map(\.y) } + series.flatMap { $0.band.flatMap { [$0.low, $0.high] } }).filter(\.isFinite)
        let frame = Frame(width: width, height: height, left: 64, right: 16, top: 36, bottom: 52 + 16 * ((series.count + 2) / 3),
                          xs: xs, ys: ys, includeZeroX: false, includeZeroY: false)
        var svg = frame.open(title: title, xLabel: xLabel, yLabel: yLabel)
        for (index, s) in series.enumerated() {
            let colour = palette[index % palette.count]
            let band = s.band.filter { $0.x.isFinite && $0.low.isFinite && $0.high.isFinite }.sorted { $0.x < $1.x }
            if band.count >= 2 {
                let upper = band.map { "\(f(frame.px($0.x))),\(f(frame.py($0.high)))" }
                let lower = band.reversed().map { "\(f(frame.px($0.x))),\(f(frame.py($0.low)))" }
                svg += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
            }
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
            if pts.count >= 2 {
                let path = pts.map { "\(f(frame.px($0.x))),\(f(frame.py($0.y)))" }.joined(separator: " ")
                svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            }
            for p in pts {
                svg += "<circle cx=\"\(f(frame.px(p.x)))\" cy=\"\(f(frame.py(p.y)))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
            }
            let lx = 64 + (index % 3) * 170, ly = height - 8 - 16 * ((series.count - 1) / 3 - index / 3)
            svg += "<rect x=\"\(lx)\" y=\"\(ly - 9)\" width=\"12\" height=\"4\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(lx + 16)\" y=\"\(ly - 4)\" font-size=\"11\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    // MARK: Building blocks

    struct Axis {
        let low: Double
        let high: Double
        let ticks: [Double]

        init(values: [Double], includeZero: Bool) {
            var low = values.min() ?? 0, high = values.max() ?? 1
            if includeZero { low = min(low, 0); high = max(high, 0) }
            if low == high { low -= 1; high += 1 }
            let step = Axis.niceStep((high - low) / 5)
            let first = (low / step).rounded(.down) * step
            let last = (high / step).rounded(.up) * step
            var ticks: [Double] = []
            var t = first
            while t <= last + step * 1e-9, ticks.count < 20 {
                ticks.append(abs(t) < step * 1e-9 ? 0 : t)
                t += step
            }
            self.low = first
            self.high = last
            self.ticks = ticks
        }

        /// 1, 2 or 5 times a power of ten.
        static func niceStep(_ raw: Double) -> Double {
            guard raw > 0, raw.isFinite else { return 1 }
            let power = pow(10, floor(log10(raw)))
            let fraction = raw / power
            return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
        }

        func clamp(_ v: Double) -> Double { min(max(v, low), high) }
    }

    struct Frame {
        let width: Int, height: Int, left: Int, right: Int, top: Int, bottom: Int
        let xAxis: Axis, yAxis: Axis

        init(width: Int, height: Int, left: Int, right: Int, top: Int, bottom: Int,
             xs: [Double], ys: [Double], includeZeroX: Bool, includeZeroY: Bool) {
            self.width = width; self.height = height; self.left = left; self.right = right; self.top = top; self.bottom = bottom
            xAxis = Axis(values: xs, includeZero: includeZeroX)
            yAxis = Axis(values: ys, includeZero: includeZeroY)
        }

        func px(_ x: Double) -> Double {
            Double(left) + (x - xAxis.low) / (xAxis.high - xAxis.low) * Double(width - left - right)
        }

        func py(_ y: Double) -> Double {
            Double(height - bottom) - (y - yAxis.low) / (yAxis.high - yAxis.low) * Double(height - top - bottom)
        }

        func open(title: String, xLabel: String, yLabel: String?, yTicks: Bool = true) -> String {
            var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\">\n"
            svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            svg += "<text x=\"\(width / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
            let plotBottom = Double(height - bottom), plotTop = Double(top)
            svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#ccc\"/>\n"
            for t in xAxis.ticks {
                let x = px(t)
                svg += SVGChart.line(x, plotTop, x, plotBottom, stroke: "#eee", dash: false)
                svg += "<text x=\"\(f(x))\" y=\"\(f(plotBottom + 16))\" text-anchor=\"middle\" font-size=\"11\">\(tickText(t, step: step(xAxis)))</text>\n"
            }
            if yTicks {
                for t in yAxis.ticks {
                    let y = py(t)
                    svg += SVGChart.line(Double(left), y, Double(width - right), y, stroke: "#eee", dash: false)
                    svg += "<text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(tickText(t, step: step(yAxis)))</text>\n"
                }
            }
            svg += "<text x=\"\(left + (width - left - right) / 2)\" y=\"\(f(plotBottom + 38))\" text-anchor=\"middle\" font-size=\"12\">\(escape(xLabel))</text>\n"
            if let yLabel {
                let cy = top + (height - top - bottom) / 2
                svg += "<text x=\"16\" y=\"\(cy)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 \(cy))\">\(escape(yLabel))</text>\n"
            }
            return svg
        }

        private func step(_ axis: Axis) -> Double { axis.ticks.count > 1 ? axis.ticks[1] - axis.ticks[0] : 1 }

        private func tickText(_ t: Double, step: Double) -> String {
            let decimals = max(0, -Int(floor(log10(step))))
            return NumberFormat.fixed(t, decimals: min(decimals, 6))
        }
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, dash: Bool) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\"\(dash ? " stroke-dasharray=\"4 3\"" : "")/>\n"
    }

    static func f(_ v: Double) -> String { NumberFormat.fixed(v, decimals: 2) }

    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
