import Foundation
import Yams

/// A feature declared in a features file: the number of non-overlapping matches of a regular
/// expression (Python syntax, run by `LinearRegex`, which keeps an untrusted pattern such as
/// `(a+)+$` linear in the text) in the response, the prompt or the reference.
public struct RegexFeature: Sendable, Equatable {
    public enum Target: String, Sendable, CaseIterable { case response, prompt, reference }

    public var name: String
    public var pattern: String
    public var caseInsensitive: Bool
    public var target: Target

    public init(name: String, pattern: String, caseInsensitive: Bool = false, target: Target = .response) {
        self.name = name
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
        self.target = target
    }

    /// Compiles the pattern, rejecting one that does not compile, that uses a construct the
    /// linear-time matcher refuses, or that matches the empty string (it would count positions, not
    /// occurrences).
    func compiled(source: String) throws -> LinearRegex {
        let regex: LinearRegex
        do {
            regex = try LinearRegex(pattern, syntax: .python, caseInsensitive: caseInsensitive)
        } catch {
            let what = error.isRefusal ? "is refused" : "does not compile"
            throw IRMError("\(source): feature \"\(name)\": regex \"\(pattern)\" \(what): \(error.message)")
        }
        if regex.matchesEmptyText {
            throw IRMError("\(source): feature \"\(name)\": regex \"\(pattern)\" matches the empty string, so it would count positions rather than occurrences; require at least one character")
        }
        return regex
    }
}

/// Which built-in features to include.
public enum BuiltInSelection: Sendable, Equatable {
    case all
    case none
    /// Groups (`FeatureGroup` raw values) and/or built-in feature names.
    case only([String])
}

/// Which features to compute: the built-ins to include, regex-count features and numeric data
/// fields. Loaded from a features file (YAML or JSON) such as
///
/// ```yaml
/// features:
///   - name: mentions_price
///     regex: "\\$\\d+|price"
///     case_insensitive: true     # optional, default false
///     target: response           # optional: response (default), prompt or reference
/// numeric_fields: [helpfulness_label]
/// include_builtins: true         # or false, or a list of groups and feature names
/// ```
public struct FeatureSpecification: Sendable, Equatable {
    public var builtIns: BuiltInSelection
    public var regexFeatures: [RegexFeature]
    public var numericFields: [String]

    public init(builtIns: BuiltInSelection = .all, regexFeatures: [RegexFeature] = [], numericFields: [String] = []) {
        self.builtIns = builtIns
        self.regexFeatures = regexFeatures
        self.numericFields = numericFields
    }

    /// Every built-in feature and nothing else.
    public static let allBuiltIns = FeatureSpecification()

    /// Reads and validates a features file; `.yaml`/`.yml` is YAML, `.json` is JSON.
    public static func load(path: String) throws -> FeatureSpecification {
        let lower = path.lowercased()
        let format: Format
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            format = .yaml
        } else if lower.hasSuffix(".json") {
            format = .json
        } else {
            throw IRMError("\(path): features file must end in .yaml, .yml or .json, so that its format is known")
        }
        let data = try InputFile.contents(path, what: "the features file")
        // YAML allows a byte-order mark at the start (PyYAML skips it, and so does the decoding); JSON does not.
        if format == .json { try JSONValue.refuseByteOrderMark(data, source: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IRMError("\(path): cannot read the features file as UTF-8 text: found bytes that are not valid UTF-8")
        }
        return try parse(text, format: format, source: path)
    }

    public enum Format: Sendable { case yaml, json }

    /// Parses and validates features-file text; `source` names it in error messages.
    public static func parse(_ text: String, format: Format, source: String) throws -> FeatureSpecification {
        let document: JSONValue
        switch format {
        case .json:
            document = try JSONValue.parse(text, source: source)
        case .yaml:
            let node: Node?
            do {
                node = try Yams.compose(yaml: text)
            } catch {
                throw IRMError("\(source): not valid YAML: \(error)")
            }
            guard let node else { throw IRMError("\(source): the features file is empty; expected a mapping with \"features\", \"numeric_fields\" and/or \"include_builtins\"") }
            document = try jsonValue(node, source: source)
        }
        return try FeatureSpecification(document: document, source: source)
    }

    init(document: JSONValue, source: String) throws {
        guard let top = document.objectValue else {
            throw IRMError("\(source): expected a mapping at the top level, found \(document.brief)")
        }
        let known: Set<String> = ["features", "numeric_fields", "include_builtins"]
        if let unknown = top.keys.sorted().first(where: { !known.contains($0) }) {
            throw IRMError("\(source): unknown key \"\(unknown)\"; expected features, numeric_fields, include_builtins")
        }

        var regexFeatures: [RegexFeature] = []
        if let list = top["features"], !list.isNull {
            guard let items = list.arrayValue else {
                throw IRMError("\(source): \"features\" must be a list, found \(list.brief)")
            }
            for (index, item) in items.enumerated() {
                regexFeatures.append(try Self.regexFeature(item, index: index, source: source))
            }
        }

        var numericFields: [String] = []
        if let list = top["numeric_fields"], !list.isNull {
            guard let items = list.arrayValue else {
                throw IRMError("\(source): \"numeric_fields\" must be a list of field names, found \(list.brief)")
            }
            for item in items {
                guard let name = item.stringValue, !name.isEmpty else {
                    throw IRMError("\(source): \"numeric_fields\" must hold field names (strings), found \(item.brief)")
                }
                numericFields.append(name)
            }
        }

        var builtIns = BuiltInSelection.all
        if let value = top["include_builtins"], !value.isNull {
            if let flag = value.boolValue {
                builtIns = flag ? .all : .none
            } else if let items = value.arrayValue {
                var names: [String] = []
                for item in items {
                    guard let name = item.stringValue else {
                        throw IRMError("\(source): \"include_builtins\" entries must be group or feature names, found \(item.brief)")
                    }
                    guard FeatureGroup(rawValue: name) != nil || BuiltinFeature(rawValue: name) != nil else {
                        let groups = FeatureGroup.allCases.map(\.rawValue).joined(separator: ", ")
                        throw IRMError("\(source): \"include_builtins\" names \"\(name)\", which is neither a group (\(groups)) nor a built-in feature (see docs/features.md)")
                    }
                    names.append(name)
                }
                builtIns = .only(names)
            } else {
                throw IRMError("\(source): \"include_builtins\" must be true, false or a list of groups and feature names, found \(value.brief)")
            }
        }

        self.init(builtIns: builtIns, regexFeatures: regexFeatures, numericFields: numericFields)
        try validate(source: source)
    }

    /// Checks names (snake_case, unique, not a built-in's) and compiles every regex.
    public func validate(source: String) throws {
        var seen = Set<String>()
        for name in regexFeatures.map(\.name) + numericFields {
            if BuiltinFeature(rawValue: name) != nil {
                throw IRMError("\(source): feature \"\(name)\" has the name of a built-in feature; choose another name")
            }
            guard seen.insert(name).inserted else {
                throw IRMError("\(source): feature \"\(name)\" is declared twice (names must be unique across features and numeric_fields)")
            }
        }
        for feature in regexFeatures {
            guard Self.isSnakeCase(feature.name) else {
                throw IRMError("\(source): feature \"\(feature.name)\": names must be snake_case (a lower-case letter, then lower-case letters, digits and underscores), because they become CSV columns")
            }
            _ = try feature.compiled(source: source)
        }
    }

    /// The selected built-ins, in catalogue order.
    var selectedBuiltIns: [BuiltinFeature] {
        switch builtIns {
        case .all: return BuiltinFeature.allCases
        case .none: return []
        case .only(let names):
            let set = Set(names)
            return BuiltinFeature.allCases.filter { set.contains($0.rawValue) || set.contains($0.definition.group.rawValue) }
        }
    }

    private static func isSnakeCase(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private static func regexFeature(_ item: JSONValue, index: Int, source: String) throws -> RegexFeature {
        guard let object = item.objectValue else {
            throw IRMError("\(source): features[\(index)] must be a mapping with name and regex, found \(item.brief)")
        }
        guard let name = object["name"]?.stringValue, !name.isEmpty else {
            throw IRMError("\(source): features[\(index)] has no \"name\" (a snake_case string)")
        }
        let known: Set<String> = ["name", "regex", "case_insensitive", "target"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw IRMError("\(source): feature \"\(name)\": unknown key \"\(unknown)\"; expected name, regex, case_insensitive, target")
        }
        guard let pattern = object["regex"]?.stringValue, !pattern.isEmpty else {
            throw IRMError("\(source): feature \"\(name)\" has no \"regex\" (a non-empty string)")
        }
        var caseInsensitive = false
        if let value = object["case_insensitive"] {
            guard let flag = value.boolValue else {
                throw IRMError("\(source): feature \"\(name)\": case_insensitive must be true or false, found \(value.brief)")
            }
            caseInsensitive = flag
        }
        var target = RegexFeature.Target.response
        if let value = object["target"] {
            guard let text = value.stringValue, let t = RegexFeature.Target(rawValue: text) else {
                throw IRMError("\(source): feature \"\(name)\": target must be response, prompt or reference, found \(value.brief)")
            }
            target = t
        }
        return RegexFeature(name: name, pattern: pattern, caseInsensitive: caseInsensitive, target: target)
    }

    /// A YAML node as a JSON value, scalars typed by YAML 1.1's core resolution (as Yams resolves
    /// them): null, bool, int, float, otherwise string.
    private static func jsonValue(_ node: Node, source: String) throws -> JSONValue {
        if let mapping = node.mapping {
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let k = key.string else {
                    throw IRMError("\(source): line \(key.mark?.line ?? 0): mapping keys must be strings")
                }
                object[k] = try jsonValue(value, source: source)
            }
            return .object(object)
        }
        if let sequence = node.sequence {
            return .array(try sequence.map { try jsonValue($0, source: source) })
        }
        switch node.any {
        case is NSNull: return .null
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let d as Double: return .double(d)
        default: break
        }
        return .string(node.string ?? "")
    }
}
