import Foundation
import XCTest

/// Runs the built `irm` executable, for tests of the command-line surface.
enum CommandRunner {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        /// The run was killed because it outlived the `timeout` it was given.
        var timedOut = false
    }

    /// The `irm` binary beside the test bundle in the build products directory.
    static var executable: URL {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        let direct = dir.appendingPathComponent("irm")
        if FileManager.default.isExecutableFile(atPath: direct.path) { return direct }
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            return bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("irm")
        }
        return direct
    }

    /// `environment` entries are added to (or, with nil, removed from) this process's environment.
    /// With `timeout`, a run still going after that many seconds is killed (SIGKILL) and its result
    /// says `timedOut`: for tests of input that could make irm wait for ever, so that a regression
    /// fails the test instead of hanging the suite.
    static func run(_ arguments: [String], environment: [String: String?] = [:], timeout: TimeInterval? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        try launch(executable, arguments, environment: environment, timeout: timeout)
    }

    /// Runs a shell script (for pipes into `irm`, such as `--data -`).
    static func shell(_ scriptPath: String) throws -> Result {
        try launch(URL(fileURLWithPath: "/bin/sh"), [scriptPath])
    }

    private static func launch(_ program: URL, _ arguments: [String], environment: [String: String?] = [:],
                               timeout: TimeInterval? = nil) throws -> Result {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (key, value) in environment { merged[key] = value }
            process.environment = merged
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let watchdog = Watchdog(pid: process.processIdentifier)
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { watchdog.killUnlessFinished() }
        }
        // Read before waiting, so a large output cannot fill the pipe and stall the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.finish()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self), timedOut: watchdog.killed)
    }

    /// Kills a run that outlives its timeout, and never a process that merely reuses its pid.
    private final class Watchdog: @unchecked Sendable {
        private let lock = NSLock()
        private let pid: pid_t
        private var finished = false
        private(set) var killed = false
        init(pid: pid_t) { self.pid = pid }
        func killUnlessFinished() {
            lock.withLock {
                guard !finished else { return }
                killed = true
                kill(pid, SIGKILL)
            }
        }
        func finish() { lock.withLock { finished = true } }
    }
}

/// A run of `irm` that a test watches while it goes on: it waits for a line on stderr, then
/// signals the process, and collects the result.
final class RunningCommand {
    let process = Process()
    private let stderrPipe = Pipe(), stdoutPipe = Pipe()
    private var stderrSoFar = Data()

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = CommandRunner.executable
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Reads stderr until a line containing `text` arrives; nil at the end of stderr (the run ended
    /// without saying it). Returns that line.
    func waitForStderrLine(containing text: String) -> String? {
        while true {
            if let line = String(decoding: stderrSoFar, as: UTF8.self).split(separator: "\n").first(where: { $0.contains(text) }) {
                return String(line)
            }
            let chunk = stderrPipe.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            stderrSoFar.append(chunk)
        }
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the end; the stderr includes what `waitForStderrLine` read.
    func finish() -> (status: Int32, reason: Process.TerminationReason, stderr: String) {
        let rest = stderrPipe.fileHandleForReading.readDataToEndOfFile()
        _ = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason, String(decoding: stderrSoFar + rest, as: UTF8.self))
    }
}
