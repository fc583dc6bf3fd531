import Foundation

/// An error from parsing or rendering a chat template.
///
/// `line` and `column` (both 1-based; the column counts Unicode scalars) point into the template
/// source where that is known. `isRaisedByTemplate` is true exactly when the template itself called
/// `raise_exception(message)`; `message` is then the template's own text, unchanged, as transformers
/// reports it (for example "Conversation roles must alternate user/assistant/user/assistant/...").
public struct ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int?
    public var column: Int?
    public var isRaisedByTemplate: Bool

    public init(message: String, line: Int? = nil, column: Int? = nil, isRaisedByTemplate: Bool = false) {
        self.message = message
        self.line = line
        self.column = column
        self.isRaisedByTemplate = isRaisedByTemplate
    }

    init(_ message: String, at location: SourceLocation?) {
        self.init(message: message, line: location?.line, column: location?.column)
    }

    public var description: String {
        let prefix = isRaisedByTemplate ? "chat template raised an exception" : "chat template error"
        if let line, let column {
            return "\(prefix) at line \(line), column \(column): \(message)"
        }
        if let line {
            return "\(prefix) at line \(line): \(message)"
        }
        return "\(prefix): \(message)"
    }
}

/// A position in the template source: 1-based line, 1-based column in Unicode scalars.
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
}
