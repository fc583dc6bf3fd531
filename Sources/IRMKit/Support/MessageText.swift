/// Text for the one-line messages irm prints on a terminal (`irm: error: …`, `irm: warning: …`).
///
/// Messages quote what they found in input files, and those bytes can be anything: an ESC starts a
/// terminal control sequence (it can recolour, retitle or clear the terminal), a vertical tab or a
/// line break splits a message that scripts read as one line. `oneLine` writes every control
/// character as an escape instead, so that a message shows what the file holds and stays one line.
public enum MessageText {
    /// `text` with every control character written as an escape: `\n`, `\r` and `\t` for line
    /// feed, carriage return and tab, `\u{1B}`-style for the rest of C0 (U+0000–U+001F), DEL
    /// (U+007F), C1 (U+0080–U+009F) and the Unicode line and paragraph separators (U+2028, U+2029).
    /// Other text, backslashes included, is unchanged.
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                out.append(scalar)
                continue
            }
            let escape: String
            switch scalar {
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            default: escape = "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
            out.append(contentsOf: escape.unicodeScalars)
        }
        return String(out)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
    }
}
