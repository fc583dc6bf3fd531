import ArgumentParser
import Foundation
import IRMKit

/// Runs `body`; a library error is printed as one line on stderr (`irm: error: ...`) and the
/// command exits with status 1, instead of ArgumentParser's usage text.
func runReportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        printDiagnostic("error", "\(error)")
        throw ExitCode(1)
    }
}

/// A warning on stderr, `irm: warning: ...`, one line.
func printWarning(_ text: String) { printDiagnostic("warning", text) }

/// The one place the tool prints its diagnostics: control characters that a message quotes from an
/// input file are escaped (`MessageText.oneLine`), so that a message cannot drive the terminal and
/// stays one line.
private func printDiagnostic(_ kind: String, _ text: String) {
    FileHandle.standardError.write(Data("irm: \(kind): \(MessageText.oneLine(text))\n".utf8))
}

/// A one-line note on stderr (what a shard or a merge did), escaped as diagnostics are.
func printNote(_ text: String) {
    FileHandle.standardError.write(Data("irm: \(MessageText.oneLine(text))\n".utf8))
}
