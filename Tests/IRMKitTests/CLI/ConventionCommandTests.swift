import Foundation
import XCTest
@testable import IRMKit

/// The conventions, data formats and adapters end to end through the `irm` executable, against
/// TRL's own numbers (Tests/Fixtures/trl, scripts/fixtures/make_trl_fixtures.py).
final class ConventionCommandTests: XCTestCase {
    /// `irm convert` of a fixture model directory, optionally with an adapter.
    func convert(_ directory: String, adapter: String? = nil) throws -> String {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("model.h5").path
        var arguments = ["convert", Fixtures.path(directory), out]
        if let adapter { arguments += ["--adapter", Fixtures.path(adapter)] }
        let result = try CommandRunner.run(arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        return out
    }

    func trlRewards(_ out: String) throws -> [String: Double] {
        let document = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: out).appendingPathComponent("divergence.json")), source: "divergence.json")
        var metrics: [String: Double] = [:]
        for (key, value) in document["trl_rewards"]?.objectValue ?? [:] {
            if let number = value["value"]?.doubleValue { metrics[key] = number }
        }
        return metrics
    }

    func expectedMetrics(_ file: String) throws -> [String: Double] {
        let document = try JSONValue.parse(Data(contentsOf: Fixtures.url(file)), source: file)
        return (document["batch_metrics"]?.objectValue ?? [:]).compactMapValues(\.doubleValue)
    }

    func analyze(before: String, after: String, data: String, extra: [String] = []) throws -> (String, CommandRunner.Result) {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("report").path
        let result = try CommandRunner.run(["analyze", "--before", before, "--after", after, "--data", Fixtures.path(data),
                                            "--reward", "none", "--beta", "0.5", "--features", try Fixtures.oneFeatureFile(for: self),
                                            "--bootstrap", "0", "--out", out] + extra)
        return (out, result)
    }

    func assertMetrics(_ actual: [String: Double], _ expected: [String: Double], _ label: String) {
        XCTAssertEqual(Set(actual.keys), ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"], label)
        for (name, value) in expected {
            assertClose(actual[name] ?? .nan, value, absolute: name == "rewards/accuracies" ? 0 : 1e-4, "\(label): \(name)")
        }
    }

    /// `irm analyze --convention trl` (the default) gives TRL's logged reward metrics and pair
    /// accuracy, on text and on chat data.
    func testAnalyzeGivesTRLsRewardMetrics() throws {
        for (family, format) in [("llama", "standard"), ("qwen2", "conversational")] {
            let before = try convert("trl/\(family)/before"), after = try convert("trl/\(family)/after")
            let (out, result) = try analyze(before: before, after: after, data: "trl/\(family)/\(format).jsonl")
            XCTAssertEqual(result.status, 0, result.stderr)
            assertMetrics(try trlRewards(out), try expectedMetrics("trl/\(family)/expected-\(format).json"), "\(family) \(format)")
            // Per sample: samples.csv against TRL's rewards/chosen and rewards/rejected of each pair.
            let expected = try JSONValue.parse(Data(contentsOf: Fixtures.url("trl/\(family)/expected-\(format).json")), source: "expected")
            let perPair = (expected["pairs"]?.arrayValue ?? []).flatMap { [$0["rewards_chosen"]?.doubleValue ?? .nan, $0["rewards_rejected"]?.doubleValue ?? .nan] }
            let table = try DataRecords.parse(Data(contentsOf: URL(fileURLWithPath: out).appendingPathComponent("samples.csv")), source: "samples.csv", fileExtension: "csv")
            let rewards = table.records.map { JSONValue($0.object["implicit_reward_sum"] ?? .none).doubleValue ?? .nan }
            XCTAssertEqual(rewards.count, perPair.count)
            assertClose(rewards, perPair, absolute: 1e-4, "\(family) \(format): samples.csv implicit_reward_sum against TRL")
            let manifest = try String(contentsOf: URL(fileURLWithPath: out).appendingPathComponent("manifest.json"), encoding: .utf8)
            XCTAssertTrue(manifest.contains("\"convention\": \"trl\""), manifest)
            let report = try String(contentsOf: URL(fileURLWithPath: out).appendingPathComponent("report.md"), encoding: .utf8)
            XCTAssertTrue(report.contains("## Implicit reward as TRL logs it"))
            guard family == "llama" else { continue }
            // The same data from standard input (`--data -`), hashed as read.
            let piped = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("piped").path
            let script = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("pipe.sh")
            try "cat \"\(Fixtures.path("trl/llama/standard.jsonl"))\" | \"\(CommandRunner.executable.path)\" analyze --before \"\(before)\" --after \"\(after)\" --data - --reward none --beta 0.5 --features \"\(try Fixtures.oneFeatureFile(for: self))\" --bootstrap 0 --out \"\(piped)\"\n"
                .write(to: script, atomically: true, encoding: .utf8)
            let fromStdin = try CommandRunner.shell(script.path)
            XCTAssertEqual(fromStdin.status, 0, fromStdin.stderr)
            XCTAssertEqual(try trlRewards(piped), try trlRewards(out))
            let sha = SHA256.hex(try Data(contentsOf: Fixtures.url("trl/llama/standard.jsonl")))
            let manifest2 = try String(contentsOf: URL(fileURLWithPath: piped).appendingPathComponent("manifest.json"), encoding: .utf8)
            XCTAssertTrue(manifest2.contains(sha), "the manifest holds the SHA-256 of what standard input gave")
        }
    }

    /// A LoRA DPO run: the base converted once, the adapter merged in memory (`--after-adapter`) or
    /// at conversion (`convert --adapter`), against TRL with the PeftModel as its policy.
    func testLoRAAdapterInMemoryAndConvertedGiveTRLsRewards() throws {
        let base = try convert("trl/llama/before")
        let expected = try expectedMetrics("trl/llama/expected-lora.json")
        let (inMemory, result) = try analyze(before: base, after: base, data: "trl/llama/standard.jsonl",
                                             extra: ["--after-adapter", Fixtures.path("trl/llama/lora-adapter")])
        XCTAssertEqual(result.status, 0, result.stderr)
        assertMetrics(try trlRewards(inMemory), expected, "--after-adapter")
        let merged = try convert("trl/llama/before", adapter: "trl/llama/lora-adapter")
        let (converted, again) = try analyze(before: base, after: merged, data: "trl/llama/standard.jsonl")
        XCTAssertEqual(again.status, 0, again.stderr)
        assertMetrics(try trlRewards(converted), expected, "convert --adapter")
        let manifest = try String(contentsOf: URL(fileURLWithPath: inMemory).appendingPathComponent("manifest.json"), encoding: .utf8)
        XCTAssertTrue(manifest.contains("adapter_model.safetensors"), "the manifest hashes the adapter's files")
    }

    // MARK: Formats

    /// Every data format, through `irm tokenize --data`: the sequence TRL's convention builds.
    func testEveryDataFormatTokenisesEndToEnd() throws {
        let model = try convert("trl/llama/before")
        let dir = try Fixtures.temporaryDirectory(for: self)
        let cases: [(name: String, text: String, samples: Int, format: String)] = [
            ("standard.jsonl", #"{"prompt": "The film was", "chosen": " a delight.", "rejected": " cheap."}"#, 2, "TRL standard"),
            ("implicit.jsonl", #"{"chosen": "The film was a delight.", "rejected": "The film was cheap."}"#, 2, "TRL implicit prompt"),
            ("chat.jsonl", #"{"prompt": [{"role": "user", "content": "Was it good?"}], "chosen": [{"role": "assistant", "content": "Yes."}], "rejected": [{"role": "assistant", "content": "No."}]}"#, 2, "TRL conversational"),
            ("pairs.jsonl", #"{"chosen": [{"role": "user", "content": "Was it good?"}, {"role": "assistant", "content": "Yes."}], "rejected": [{"role": "user", "content": "Was it good?"}, {"role": "assistant", "content": "No."}]}"#, 2, "message pairs"),
            ("hh.jsonl", #"{"chosen": "\n\nHuman: Was it good?\n\nAssistant: Yes.", "rejected": "\n\nHuman: Was it good?\n\nAssistant: No."}"#, 2, "HH-RLHF transcript"),
            ("unpaired.jsonl", #"{"prompt": "The film was", "completion": " a delight.", "label": true}"#, 1, "prompt/completion"),
            ("unpaired-chat.jsonl", #"{"prompt": [{"role": "user", "content": "Was it good?"}], "completion": [{"role": "assistant", "content": "Yes."}]}"#, 1, "conversational prompt/completion"),
            ("array.json", #"[{"prompt": "The film was", "response": " a delight."}]"#, 1, "prompt/response"),
            ("table.csv", "prompt,chosen,rejected\nThe film was, a delight., cheap.\n", 2, "TRL standard"),
            ("table.tsv", "prompt\tresponse\nThe film was\t a delight.\n", 1, "prompt/response"),
            ("bos.jsonl", #"{"prompt": "<s>The film was", "response": " a delight."}"#, 1, "prompt/response"),
        ]
        for c in cases {
            let path = dir.appendingPathComponent(c.name)
            try (Data([0xEF, 0xBB, 0xBF]) + Data(c.text.utf8)).write(to: path)
            let result = try CommandRunner.run(["tokenize", "--model", model, "--data", path.path])
            XCTAssertEqual(result.status, 0, "\(c.name): \(result.stderr)")
            XCTAssertEqual(result.stderr.contains("already start with the BOS string"), c.name == "bos.jsonl", "\(c.name): \(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, c.samples, c.name)
            for line in lines {
                let value = try JSONValue.parse(line, source: c.name)
                XCTAssertEqual(value["format"]?.stringValue, c.format, c.name)
                let ids = value["ids"]?.arrayValue ?? [], end = value["prompt_end"]?.intValue ?? -1
                XCTAssertTrue(end > 0 && end < ids.count, "\(c.name): the prompt ends inside the sequence (\(end) of \(ids.count))")
                // One BOS <s> in the prompt: the tokenizer's for text, the template's for chat (this
                // Llama-2 template writes some whitespace before it).
                XCTAssertEqual(ids.prefix(end).filter { $0.intValue == 1 }.count, 1, "\(c.name): one BOS")
            }
        }
        // Standard input.
        let stdin = dir.appendingPathComponent("stdin.sh")
        try "printf '%s\\n' '{\"prompt\": \"a\", \"response\": \" b\"}' | \"\(CommandRunner.executable.path)\" tokenize --model \"\(model)\" --data -\n"
            .write(to: stdin, atomically: true, encoding: .utf8)
        let piped = try CommandRunner.shell(stdin.path)
        XCTAssertEqual(piped.status, 0, piped.stderr)
        XCTAssertTrue(piped.stdout.contains("\"prompt_end\""), piped.stdout)
    }

    // MARK: Bad input

    func assertOneLineError(_ result: CommandRunner.Result, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr, file: file, line: line)
        for part in parts { XCTAssertTrue(result.stderr.contains(part), "expected \"\(part)\" in: \(result.stderr)", file: file, line: line) }
    }

    func testTemplateErrorsAndMismatchedAdaptersAreOneLineErrors() throws {
        let model = try convert("trl/llama/before")
        let dir = try Fixtures.temporaryDirectory(for: self)
        // The Llama-2 template raises when roles do not alternate; its message becomes irm's error.
        let twoUsers = dir.appendingPathComponent("two-users.jsonl")
        try #"{"id": "q1", "prompt": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}], "chosen": [{"role": "assistant", "content": "Yes."}], "rejected": [{"role": "assistant", "content": "No."}]}"#
            .write(to: twoUsers, atomically: true, encoding: .utf8)
        assertOneLineError(try CommandRunner.run(["tokenize", "--model", model, "--data", twoUsers.path]),
                           contains: ["two-users.jsonl: line 1 (id \"q1\", chosen)", "Conversation roles must alternate user/assistant/user/assistant/..."])
        // An unsupported construct names itself, with its line and column.
        let include = dir.appendingPathComponent("include.jinja")
        try "{% for m in messages %}{{ m.content }}\n{% include 'other.jinja' %}{% endfor %}".write(to: include, atomically: true, encoding: .utf8)
        assertOneLineError(try CommandRunner.run(["tokenize", "--model", model, "--data", twoUsers.path, "--chat-template", include.path]),
                           contains: ["include.jinja", "include", "line 2"])
        // Text data does not need the template, so a broken one does not stop it.
        let text = dir.appendingPathComponent("text.jsonl")
        try #"{"prompt": "a", "response": " b"}"#.write(to: text, atomically: true, encoding: .utf8)
        XCTAssertEqual(try CommandRunner.run(["tokenize", "--model", model, "--data", text.path, "--chat-template", include.path]).status, 0)
        // RewardBench needs a BOS token; Qwen2's tokenizer has none.
        let qwen = try convert("trl/qwen2/before")
        assertOneLineError(try CommandRunner.run(["tokenize", "--model", qwen, "--data", text.path, "--convention", "rewardbench"]),
                           contains: ["RewardBench puts the tokenizer's BOS before every prompt"])
        // An adapter for another base: the tensor, both shapes.
        let (_, mismatch) = try analyze(before: qwen, after: qwen, data: "trl/qwen2/standard.jsonl",
                                        extra: ["--after-adapter", Fixtures.path("lora/llama-all")])
        assertOneLineError(mismatch, contains: ["llama-all"])
    }

    // MARK: Options

    /// `--eos` overrides the convention's rule; `--max-length` is reported, not applied; inspect
    /// names the chat template.
    func testEOSRuleMaxLengthAndInspect() throws {
        let model = try convert("trl/llama/before")
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = dir.appendingPathComponent("d.jsonl")
        try #"{"prompt": "The film was", "response": " a delight from start to finish."}"#.write(to: data, atomically: true, encoding: .utf8)
        func lastID(_ extra: [String]) throws -> (Int?, String) {
            let result = try CommandRunner.run(["tokenize", "--model", model, "--data", data.path] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            return (try JSONValue.parse(result.stdout, source: "out")["ids"]?.arrayValue?.last?.intValue, result.stderr)
        }
        XCTAssertEqual(try lastID([]).0, 2, "TRL appends </s> to a text response")
        XCTAssertNotEqual(try lastID(["--eos", "never"]).0, 2)
        XCTAssertNotEqual(try lastID(["--convention", "separate"]).0, 2)
        XCTAssertEqual(try lastID(["--convention", "separate", "--eos", "always"]).0, 2)
        let (_, warning) = try lastID(["--max-length", "5"])
        XCTAssertTrue(warning.contains("longer than max_length 5") && warning.contains("TRL truncates them in training"), warning)
        let inspect = try CommandRunner.run(["inspect", model])
        XCTAssertTrue(inspect.stdout.contains("chat template chat_template.jinja"), inspect.stdout)
        let plain = try CommandRunner.run(["inspect", try convert("hf/llama")])
        XCTAssertTrue(plain.stdout.contains("chat template none"), plain.stdout)
    }
}
