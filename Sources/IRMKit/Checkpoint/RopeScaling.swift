import Foundation

/// A RoPE scaling configuration, as transformers reads it from `rope_parameters` (transformers 5)
/// or `rope_scaling` (earlier versions): the `rope_type` and its parameters, checked here so that
/// `convert`, `inspect` and `score` all refuse the same configurations, naming the key.
/// The frequencies each type gives are in Model/RotaryEmbedding.swift.
public struct RopeScaling: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case linear, dynamic, yarn, longrope, llama3
    }

    public var kind: Kind
    /// `factor`: the context extension (for yarn and longrope, `max_position_embeddings /
    /// original_max_position_embeddings` when absent).
    public var factor: Double
    public var originalMaxPositions: Int?
    /// llama3: `low_freq_factor`, `high_freq_factor`.
    public var lowFrequencyFactor: Double?
    public var highFrequencyFactor: Double?
    /// yarn and longrope: the cos/sin multiplier, when the config fixes it.
    public var attentionFactor: Double?
    /// yarn: `beta_fast` (32), `beta_slow` (1), `mscale`, `mscale_all_dim`, `truncate` (true).
    public var betaFast: Double = 32
    public var betaSlow: Double = 1
    public var mscale: Double?
    public var mscaleAllDimensions: Double?
    public var truncate = true
    /// longrope: one factor per rotary frequency.
    public var shortFactor: [Double]?
    public var longFactor: [Double]?

    /// `max_position_embeddings` of the config, which `dynamic` extends.
    public var maxPositions: Int = 0

    /// The longest sequence whose RoPE does not depend on its own length; beyond it `dynamic`
    /// recomputes θ from the sequence's length and `longrope` switches to its long factors, per
    /// sequence (docs/scoring.md). nil when the type does not depend on length.
    public var uniformLength: Int? {
        switch kind {
        case .longrope: originalMaxPositions
        case .dynamic: maxPositions
        default: nil
        }
    }

    /// The longest sequence irm scores when the scaling extends the context past
    /// `max_position_embeddings`: `factor × max_position_embeddings` for `dynamic`; nil otherwise
    /// (longrope's `max_position_embeddings` is already the extended context).
    public var extendedContext: Int? {
        kind == .dynamic ? Int((factor * Double(maxPositions)).rounded(.down)) : nil
    }

    /// The key under which sequences of `length` tokens share their rotary frequencies: nil up
    /// to `uniformLength`; past it, the length itself for `dynamic` (each length has its own θ)
    /// and one key for `longrope` (every long sequence uses the long factors).
    public func frequencyKey(sequenceLength length: Int) -> Int? {
        guard let uniform = uniformLength, length > uniform else { return nil }
        return kind == .dynamic ? length : uniform + 1
    }

    /// Reads and checks the scaling entries of `parameters` (the whole `rope_parameters` or
    /// `rope_scaling` object). nil for `default` or no type. Errors name the key and say what was
    /// expected.
    static func parse(_ parameters: [String: JSONValue], source: String, key: String, maxPositions: Int, rotaryDim: Int) throws -> RopeScaling? {
        let here = "\(source): \"\(key)\""
        guard let typeValue = parameters["rope_type"] ?? parameters["type"], !typeValue.isNull else { return nil }
        guard let typeName = typeValue.stringValue else {
            throw IRMError("\(here).rope_type should be a string, found \(typeValue.brief)")
        }
        if typeName == "default" { return nil }
        guard let kind = Kind(rawValue: typeName) else {
            throw IRMError("\(here).rope_type \"\(typeName)\" is not supported; irm computes default, \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        func number(_ name: String) throws -> Double? {
            guard let value = parameters[name], !value.isNull else { return nil }
            guard let number = value.doubleValue, number.isFinite else {
                throw IRMError("\(here).\(name) should be a finite number, found \(value.brief)")
            }
            return number
        }
        func positive(_ name: String, required: Bool) throws -> Double? {
            guard let value = try number(name) else {
                if required { throw IRMError("\(here): rope_type \"\(typeName)\" needs \"\(name)\" (a positive number)") }
                return nil
            }
            guard value > 0 else { throw IRMError("\(here).\(name) should be positive, found \(value)") }
            return value
        }
        func factors(_ name: String) throws -> [Double] {
            guard let items = parameters[name]?.arrayValue else {
                throw IRMError("\(here): rope_type \"longrope\" needs \"\(name)\" (a list of \(rotaryDim / 2) positive numbers)")
            }
            let values = items.compactMap(\.doubleValue)
            guard values.count == items.count, values.count == rotaryDim / 2, values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw IRMError("\(here).\(name) should hold \(rotaryDim / 2) positive numbers (one per rotary frequency), found \(items.count) entries")
            }
            return values
        }

        let original = try positive("original_max_position_embeddings", required: [.yarn, .longrope, .llama3].contains(kind))
        if let original, original.rounded() != original || original > 1e9 {
            throw IRMError("\(here).original_max_position_embeddings should be a whole number of positions, found \(original)")
        }
        let originalMax = original.map { Int($0) }
        let defaultFactor = originalMax.map { Double(maxPositions) / Double($0) }
        let factor: Double
        switch kind {
        case .linear, .dynamic, .llama3: factor = try positive("factor", required: true) ?? 1
        case .yarn, .longrope: factor = try positive("factor", required: false) ?? defaultFactor ?? 1
        }
        if kind == .dynamic, factor * Double(maxPositions) > Double(ConfigReader.sizeLimit) {
            throw IRMError("\(here).factor is \(factor); dynamic scaling extends the context to factor × max_position_embeddings (\(maxPositions)), which must stay within \(ConfigReader.sizeLimit) positions")
        }
        var scaling = RopeScaling(kind: kind, factor: factor, originalMaxPositions: originalMax)
        scaling.maxPositions = maxPositions
        scaling.attentionFactor = try positive("attention_factor", required: false)
        switch kind {
        case .llama3:
            scaling.lowFrequencyFactor = try positive("low_freq_factor", required: true)
            scaling.highFrequencyFactor = try positive("high_freq_factor", required: true)
            if let low = scaling.lowFrequencyFactor, let high = scaling.highFrequencyFactor, high <= low {
                throw IRMError("\(here): high_freq_factor (\(high)) must be greater than low_freq_factor (\(low))")
            }
        case .yarn:
            scaling.betaFast = try positive("beta_fast", required: false) ?? 32
            scaling.betaSlow = try positive("beta_slow", required: false) ?? 1
            // 0 means unset, as in transformers; a negative one would make the attention factor ≤ 0.
            for (name, field) in [("mscale", \RopeScaling.mscale), ("mscale_all_dim", \RopeScaling.mscaleAllDimensions)] {
                guard let value = try number(name) else { continue }
                guard value >= 0 else { throw IRMError("\(here).\(name) should be 0 or more, found \(value)") }
                scaling[keyPath: field] = value
            }
            if let value = parameters["truncate"], !value.isNull {
                guard let flag = value.boolValue else { throw IRMError("\(here).truncate should be true or false, found \(value.brief)") }
                scaling.truncate = flag
            }
        case .longrope:
            scaling.shortFactor = try factors("short_factor")
            scaling.longFactor = try factors("long_factor")
        case .linear, .dynamic:
            break
        }
        return scaling
    }
}
