/// The result of a statistic that can be undefined for some data (a constant target, a constant
/// input to a correlation). Undefined is a value with a reason a user can read, never a NaN.
public enum StatisticOutcome<Value: Sendable>: Sendable {
    case defined(Value)
    case undefined(reason: String)

    /// The value when defined, else nil.
    public var value: Value? {
        if case .defined(let v) = self { return v }
        return nil
    }

    /// The reason when undefined, else nil.
    public var undefinedReason: String? {
        if case .undefined(let reason) = self { return reason }
        return nil
    }
}
