import Foundation

extension ScoreStore {
    /// What an entry holds. Each kind has a schema preset (`Schema.logprobs`, …); the kind itself
    /// only names the computation, so that two computations never share a directory.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        /// Per sample, the per-token log-probs of the response.
        case logprobs
        /// Per sample, the per-token exact `KL(checkpoint ‖ base)`, and optionally the checkpoint's
        /// probability on rows the base lacks. `base` is the base's SHA-256 (combined with its
        /// adapter's, as `Key.combinedSHA256` does).
        case kl(base: String)
        /// Per sample, the final hidden states of the rows that predict each response token.
        case finalHidden
        /// Per sample, mean-pooled hidden states (a fixed set of named vectors, e.g. prompt and response).
        case pooledHidden
        /// Per sample, a reward model's score vector.
        case reward

        /// The name used in the canonical key text and as the directory-name prefix.
        public var tag: String {
            switch self {
            case .logprobs: "logprobs"
            case .kl: "kl"
            case .finalHidden: "final-hidden"
            case .pooledHidden: "pooled-hidden"
            case .reward: "reward"
            }
        }

        public var description: String {
            if case .kl(let base) = self { return "kl (base \(base))" }
            return tag
        }
    }

    /// Everything that decides the numbers of an entry. Two keys with the same canonical text are
    /// the same entry; anything else is a different directory.
    ///
    /// What the key cannot see is the caller's to put in it: `dataSHA256` must cover the exact token
    /// sequences scored (so a change of tokenizer, template or convention changes it), and `options`
    /// must carry any setting that changes the numbers by more than float32 rounding (for example a
    /// compute precision). Settings that only move results within the scorer's batch-invariance
    /// tolerance (threads, tokens per batch) are deliberately not part of the key.
    public struct Key: Sendable, Hashable {
        /// SHA-256 (lower-case hex) of the checkpoint, combined with its adapter's files if any.
        public var checkpointSHA256: String
        /// SHA-256 (lower-case hex) of the exact token sequences scored (see `dataSHA256(of:)`).
        public var dataSHA256: String
        /// How prompt and response became tokens, e.g. `trl`.
        public var convention: String
        public var irmVersion: String
        public var kind: Kind
        /// Further settings that change the numbers, as name → value. Sorted by name in the key text.
        public var options: [String: String]

        /// `checkpointSHA256s`: the checkpoint file's SHA-256 first, then its adapter's files' in a
        /// fixed order (sorted by file name, say); they are combined by `combinedSHA256`.
        public init(checkpointSHA256s: [String], dataSHA256: String, convention: String,
                    irmVersion: String = IRMVersion.string, kind: Kind, options: [String: String] = [:]) {
            self.checkpointSHA256 = Key.combinedSHA256(checkpointSHA256s)
            self.dataSHA256 = dataSHA256.lowercased()
            self.convention = convention
            self.irmVersion = irmVersion
            self.kind = kind
            self.options = options
        }

        /// One digest for a list of file digests: the digest itself when there is one, otherwise
        /// `SHA-256("irm-combined-sha256 1\n" + d1 + "\n" + d2 + "\n" + …)` over the lower-case hex
        /// digests in the order given (order matters).
        public static func combinedSHA256(_ digests: [String]) -> String {
            let lowered = digests.map { $0.lowercased() }
            // An empty list gives an empty string, which `validate` refuses.
            if lowered.count <= 1 { return lowered.first ?? "" }
            var text = "irm-combined-sha256 1\n"
            for digest in lowered { text += digest + "\n" }
            return SHA256.hex(Array(text.utf8))
        }

        /// SHA-256 of token sequences, as the `dataSHA256` of a key: for each sample in order, the
        /// prompt's length and ids, then the response's length and ids, each as little-endian int64.
        /// Sample names are not included: renaming samples does not change their scores.
        public static func dataSHA256(of samples: [ScoringSample]) -> String {
            var hasher = SHA256()
            var buffer: [UInt8] = []
            func append(_ value: Int64) {
                withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
            }
            append(Int64(samples.count))
            for sample in samples {
                append(Int64(sample.promptIDs.count))
                for id in sample.promptIDs { append(Int64(id)) }
                append(Int64(sample.responseIDs.count))
                for id in sample.responseIDs { append(Int64(id)) }
                if buffer.count >= 1 << 20 {
                    hasher.update(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            hasher.update(buffer)
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        }

        /// The canonical serialisation that the digest is taken over: one line per field,
        /// `name=<UTF-8 byte length>:<value>\n`, in a fixed order, options sorted by name. The length
        /// prefix makes it unambiguous whatever the values contain.
        public var canonicalText: String {
            var fields: [(String, String)] = [
                ("format", ScoreStore.formatName),
                ("format_version", String(ScoreStore.formatVersion)),
                ("checkpoint_sha256", checkpointSHA256),
                ("data_sha256", dataSHA256),
                ("convention", convention),
                ("irm_version", irmVersion),
                ("kind", kind.tag),
            ]
            if case .kl(let base) = kind { fields.append(("base_sha256", base.lowercased())) }
            for name in options.keys.sorted() { fields.append(("option." + name, options[name] ?? "")) }
            return fields.map { "\($0.0)=\($0.1.utf8.count):\($0.1)\n" }.joined()
        }

        /// SHA-256 (hex) of `canonicalText`.
        public var digest: String { SHA256.hex(Array(canonicalText.utf8)) }

        /// The entry's directory name: `<kind tag>-<digest>`. The tag is only for people browsing the
        /// store; the digest alone identifies the entry.
        public var directoryName: String { "\(kind.tag)-\(digest)" }

        /// Checks that the digests are 64 hex digits and the strings are usable.
        func validate() throws {
            func checkDigest(_ value: String, _ what: String) throws {
                guard value.utf8.count == 64, value.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                    throw IRMError("score store key: \(what) must be a SHA-256 as 64 hex digits, found \"\(value)\"")
                }
            }
            try checkDigest(checkpointSHA256, "the checkpoint SHA-256")
            try checkDigest(dataSHA256, "the data SHA-256")
            if case .kl(let base) = kind { try checkDigest(base.lowercased(), "the KL base's SHA-256") }
            guard !irmVersion.isEmpty else { throw IRMError("score store key: the irm version is empty") }
            guard !convention.isEmpty else { throw IRMError("score store key: the convention is empty") }
        }
    }
}
