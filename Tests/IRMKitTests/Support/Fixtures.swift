import Foundation
import XCTest

/// Locates committed test fixtures under `Tests/Fixtures/`, relative to this source file, so that
/// fixtures are read in place rather than copied into a resource bundle.
enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // IRMKitTests
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures", isDirectory: true)

    static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    static func path(_ relativePath: String) -> String {
        url(relativePath).path
    }

    /// A path relative to the repository root (for the bundled checkpoints/ and analyses/).
    static func repositoryPath(_ relativePath: String) -> String {
        root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relativePath).path
    }

    /// A features file with one regex feature and no built-ins, so that a handful of samples
    /// leaves the fits degrees of freedom.
    static func oneFeatureFile(for testCase: XCTestCase) throws -> String {
        let path = try temporaryDirectory(for: testCase).appendingPathComponent("features.yaml")
        try "features:\n  - name: says_the\n    regex: \"the\"\n    case_insensitive: true\ninclude_builtins: false\n"
            .write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    /// A fresh, empty temporary directory that is removed when the test case tears down.
    static func temporaryDirectory(for testCase: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("irm-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        testCase.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// A file of the bundled demo run, `checkpoints/demo/NAME`.
    static func demo(_ name: String) -> String { repositoryPath("checkpoints/demo/\(name)") }

    /// The demo's first `count` prompts (two samples each) as `name` in `dir`: with the default
    /// eight, enough for a report and quick to score. Returns its path.
    static func demoPrompts(_ count: Int = 8, in dir: URL, name: String = "prompts.jsonl") throws -> String {
        let lines = try String(contentsOfFile: demo("prompts.jsonl"), encoding: .utf8).split(separator: "\n").prefix(count)
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `irm analyze` of the demo pair, made fast: a features file (`oneFeatureFile`), no reward, no
    /// bootstrap, no score store, one thread, quiet.
    static func quickAnalyzeArguments(data: String, features: String, out: String) -> [String] {
        ["analyze", "--before", demo("base.h5"), "--after", demo("rlhf.h5"), "--data", data, "--reward", "none",
         "--convention", "separate", "--features", features, "--bootstrap", "0", "--no-store", "--quiet", "--threads", "1", "--out", out]
    }

    /// Every regular file below `directory`, by its path relative to it (`plots/lmg.svg`).
    static func files(in directory: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for path in try FileManager.default.subpathsOfDirectory(atPath: directory.path) {
            let url = directory.appendingPathComponent(path)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue { out[path] = try Data(contentsOf: url) }
        }
        return out
    }
}

/// Asserts |actual - expected| <= absolute + relative * |expected|, elementwise, and reports the
/// worst offending index. The one tolerance helper every numeric test uses.
func assertClose(
    _ actual: [Double], _ expected: [Double], absolute: Double = 0, relative: Double = 0,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("count mismatch: \(actual.count) vs \(expected.count). \(message())", file: file, line: line)
        return
    }
    var worst = -1
    var worstExcess = 0.0
    for i in actual.indices {
        let a = actual[i], e = expected[i]
        if a.isNaN != e.isNaN { worst = i; break }
        if a.isNaN { continue }
        if a == e { continue }
        let excess = abs(a - e) - (absolute + relative * abs(e))
        if excess > worstExcess || !excess.isFinite { worstExcess = excess; worst = i }
    }
    if worst >= 0 {
        XCTFail("index \(worst): \(actual[worst]) vs expected \(expected[worst]) (abs \(absolute), rel \(relative)). \(message())",
                file: file, line: line)
    }
}

func assertClose(
    _ actual: Double, _ expected: Double, absolute: Double = 0, relative: Double = 0,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose([actual], [expected], absolute: absolute, relative: relative, message(), file: file, line: line)
}
