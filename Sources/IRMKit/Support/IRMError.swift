/// A user-facing failure whose message already says what went wrong, where, and what was expected.
public struct IRMError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
