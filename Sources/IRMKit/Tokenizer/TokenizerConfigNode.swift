/// One node of a tokenizer.json document together with the JSON path that leads to it, so that every
/// error about the configuration names the file, the place inside it, what was expected and what was
/// found.
struct TokenizerConfigNode {
    let value: JSONValue
    /// A JSON path such as `pre_tokenizer.pretokenizers[1]`; empty for the document root.
    let path: String
    /// Where the document came from, e.g. `checkpoint foo.h5: /tokenizer/tokenizer.json`.
    let source: String

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// An error message prefixed with the source and this node's path.
    func failure(_ message: String) -> IRMError {
        IRMError("\(source): \(path.isEmpty ? "top level" : path): \(message)")
    }

    /// The child at `key`, or nil when the key is absent or null (Hugging Face treats both alike).
    func child(_ key: String) -> TokenizerConfigNode? {
        guard let child = value[key], !child.isNull else { return nil }
        return TokenizerConfigNode(value: child, path: childPath(key), source: source)
    }

    func requiredChild(_ key: String) throws -> TokenizerConfigNode {
        guard let node = child(key) else {
            throw failure("expected a \"\(key)\" field, found none")
        }
        return node
    }

    /// The node's `type` field, which names the component (`BPE`, `ByteLevel`, `Sequence`, ...).
    func componentType() throws -> String {
        guard let type = value["type"]?.stringValue else {
            throw failure("expected an object with a string \"type\" field, found \(value.brief)")
        }
        return type
    }

    /// The error for a component this tokenizer does not implement. It names the component type and
    /// the JSON path, so that a user knows exactly which part of the file is the obstacle.
    func unsupported(_ kind: String, type: String, supported: [String]) -> IRMError {
        failure("unsupported \(kind) type \"\(type)\"; irm's tokenizer supports \(supported.joined(separator: ", "))")
    }

    func string(_ key: String) throws -> String? {
        guard let node = child(key) else { return nil }
        guard let string = node.value.stringValue else {
            throw node.failure("expected a string, found \(node.value.brief)")
        }
        return string
    }

    func requiredString(_ key: String) throws -> String {
        guard let string = try string(key) else { throw failure("expected a string field \"\(key)\", found none") }
        return string
    }

    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let node = child(key) else { return defaultValue }
        guard let bool = node.value.boolValue else {
            throw node.failure("expected true or false, found \(node.value.brief)")
        }
        return bool
    }

    func int(_ key: String, default defaultValue: Int) throws -> Int {
        guard let node = child(key) else { return defaultValue }
        guard let int = node.value.intValue else {
            throw node.failure("expected an integer, found \(node.value.brief)")
        }
        return int
    }

    func array(_ key: String) throws -> [TokenizerConfigNode] {
        let node = try requiredChild(key)
        return try node.elements()
    }

    /// The elements of this node, which must be an array.
    func elements() throws -> [TokenizerConfigNode] {
        guard let items = value.arrayValue else {
            throw failure("expected an array, found \(value.brief)")
        }
        return items.enumerated().map { index, item in
            TokenizerConfigNode(value: item, path: "\(path)[\(index)]", source: source)
        }
    }

    /// A single-character field such as Metaspace's `replacement`.
    func scalar(_ key: String) throws -> Unicode.Scalar {
        let text = try requiredString(key)
        let scalars = Array(text.unicodeScalars)
        guard scalars.count == 1 else {
            throw failure("expected \"\(key)\" to be a single character, found \"\(text)\" (\(scalars.count) scalars)")
        }
        return scalars[0]
    }
}
