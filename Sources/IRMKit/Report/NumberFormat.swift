import Foundation

/// Deterministic text for numbers in reports: the same value always prints the same way, on every
/// machine and locale. (`String(format:)` without a locale formats as C does, with `.` decimals.)
public enum NumberFormat {
    /// Shortest text that round-trips to the same Double (Swift's `description`); `NaN` and
    /// infinities print as empty cells would mislead, so they print as `nan`, `inf`, `-inf`.
    public static func exact(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == 0 { return "0" }
        return "\(value)"
    }

    /// A fixed number of significant digits for tables meant for people, e.g. 3 → `0.0123`,
    /// `12.3`, `1.23e+05`. Uses scientific notation outside [1e-4, 1e6).
    public static func significant(_ value: Double, digits: Int = 3) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e6 || magnitude < 1e-4 {
            return String(format: "%.\(max(digits - 1, 0))e", value)
        }
        let decimals = max(digits - 1 - Int(floor(log10(magnitude))), 0)
        return String(format: "%.\(decimals)f", value)
    }

    /// A fixed number of decimals (for coordinates and p-values shown to people).
    public static func fixed(_ value: Double, decimals: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        let text = String(format: "%.\(decimals)f", value)
        return text == "-" + String(format: "%.\(decimals)f", 0.0) ? String(text.dropFirst()) : text
    }

    /// p-values as statsmodels shows them: three decimals, and `<0.001` below that.
    public static func pValue(_ p: Double) -> String {
        if p.isNaN { return "nan" }
        return p < 0.001 ? "<0.001" : fixed(p, decimals: 3)
    }
}
