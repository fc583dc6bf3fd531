import Foundation
import XCTest
@testable import IRMKit

/// A command line irm cannot use is one line on stderr, `irm: error: MESSAGE (see 'irm SUB --help')`,
/// with exit status 64. It used to be ArgumentParser's "Error: …", a "Help:" line and the usage;
/// and `--bootstrap -1` said "Missing value" (issue 14, item 8).
final class ArgumentErrorTests: XCTestCase {
    func assertOneLine(_ arguments: [String], _ expected: String, status: Int32 = 64, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try CommandRunner.run(arguments)
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr, "irm: error: \(expected)\n", file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
    }

    /// Paths that every check before the ones under test accepts (nothing is read: the argument
    /// checks come first).
    let required = ["--before", "a.h5", "--after", "b.h5", "--data", "d.jsonl", "--out", "out"]

    func testArgumentErrorsAreOneLine() throws {
        try assertOneLine(["analyze"], "missing expected argument '--before <before>' (see 'irm analyze --help')")
        try assertOneLine(["score", "--model"], "missing value for '--model <model>' (see 'irm score --help')")
        try assertOneLine(["analyze"] + required + ["--no-such-option"],
                          "unknown option '--no-such-option' (see 'irm analyze --help')")
        try assertOneLine(["no-such-command"], "unexpected argument 'no-such-command' (see 'irm --help')")
        try assertOneLine(["analyze"] + required + ["--reward-type", "median"],
                          "the value 'median' is invalid for '--reward-type <reward-type>'. Please provide one of 'sum' and 'mean' (see 'irm analyze --help')")
        // A command's own check (ValidationError) reads the same way.
        try assertOneLine(["tokenize", "--text", "hi"], "give exactly one of --model and --tokenizer (see 'irm tokenize --help')")
        try assertOneLine(["analyze"] + required + ["--store", "s", "--no-store"], "give --store or --no-store, not both (see 'irm analyze --help')")
    }

    /// A negative number after an option that takes a value is that option's value, so the
    /// option's own check says what is wrong with it.
    func testANegativeNumberIsTheOptionsValue() throws {
        try assertOneLine(["analyze"] + required + ["--bootstrap", "-1"], "--bootstrap must be 0 or more, found -1 (see 'irm analyze --help')")
        try assertOneLine(["analyze"] + required + ["--top", "-3"], "--top must be 0 or more, found -3 (see 'irm analyze --help')")
        try assertOneLine(["drift", "--base", "a.h5", "--checkpoint", "b.h5", "--data", "d.jsonl", "--out", "o", "--bootstrap", "-2"],
                          "--bootstrap must be 0 or more, found -2 (see 'irm drift --help')")
        try assertOneLine(["score", "--model", "m.h5", "--data", "d.jsonl", "--out", "o", "--threads", "-2"],
                          "--threads must be at least 1, found -2 (see 'irm score --help')")
        try assertOneLine(["score", "--model", "m.h5", "--data", "d.jsonl", "--out", "o", "--batch-tokens", "-.5"],
                          "the value '-.5' is invalid for '--batch-tokens <batch-tokens>' (see 'irm score --help')")
        try assertOneLine(["analyze"] + required + ["--max-length", "-5"], "--max-length must be at least 1, found -5 (see 'irm analyze --help')")
        try assertOneLine(["analyze"] + required + ["--seed", "-1"], "the value '-1' is invalid for '--seed <seed>' (see 'irm analyze --help')")
        // β is checked when the analysis starts (a run error: status 1).
        try assertOneLine(["analyze"] + required + ["--beta", "-0.1"], "--beta must be a positive number, found -0.1", status: 1)
        try assertOneLine(["analyze"] + required + ["--beta", "-inf"], "--beta must be a positive number, found -inf", status: 1)
        // After a flag, or after "--", a negative number is not an option's value.
        try assertOneLine(["analyze"] + required + ["--quiet", "-1"], "unknown option '-1' (see 'irm analyze --help')")
        try assertOneLine(["analyze"] + required + ["--", "--top", "-1"], "2 unexpected arguments: '--top', '-1' (see 'irm analyze --help')")
    }

    func testHelpAndVersionAreUnchanged() throws {
        let help = try CommandRunner.run(["analyze", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("USAGE: irm analyze"), help.stdout)
        XCTAssertTrue(help.stdout.contains("--bootstrap <bootstrap>"), help.stdout)
        XCTAssertEqual(help.stderr, "")
        let helpCommand = try CommandRunner.run(["help", "score"])
        XCTAssertEqual(helpCommand.status, 0)
        XCTAssertTrue(helpCommand.stdout.contains("USAGE: irm score"), helpCommand.stdout)
        let root = try CommandRunner.run(["--help"])
        XCTAssertEqual(root.status, 0)
        XCTAssertTrue(root.stdout.contains("SUBCOMMANDS:"), root.stdout)
        let version = try CommandRunner.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout, "\(IRMVersion.string)\n")
        XCTAssertEqual(version.stderr, "")
    }
}
