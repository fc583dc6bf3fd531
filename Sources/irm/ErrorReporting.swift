import ArgumentParser
import Foundation

/// Runs `body`; a library error is printed as one line on stderr (`irm: error: ...`) and the
/// command exits with status 1, instead of ArgumentParser's usage text.
func runReportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let message = "irm: error: \(error)\n"
        FileHandle.standardError.write(Data(message.utf8))
        throw ExitCode(1)
    }
}
