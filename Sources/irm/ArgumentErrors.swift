import ArgumentParser
import Foundation
import IRMKit

/// How irm reads a command line it is given and reports one it cannot use.
///
/// ArgumentParser prints an argument error as three or more lines ("Error: …", a "Help:" line
/// and the usage). irm prints every error as one line, `irm: error: MESSAGE`, and an argument
/// error adds where the usage is: `irm: error: missing value for '--out <out>' (see 'irm analyze
/// --help')`, with exit status 64 (EX_USAGE; errors met while running exit with 1). `--help`,
/// `--version` and `irm help` print as ArgumentParser prints them, with status 0.
enum ArgumentErrors {
    /// Runs `IRM` on `arguments`, as `ParsableCommand.main` does, but with irm's messages.
    static func main(_ arguments: [String]) -> Never {
        let arguments = joiningNegativeNumbers(arguments)
        do {
            var command = try IRM.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch {
            let status = IRM.exitCode(for: error)
            // Help and version requests (status 0), and errors already reported (`ExitCode`).
            if status == .success || error is ExitCode { IRM.exit(withError: error) }
            var message = oneLine(IRM.message(for: error))
            if status == .validationFailure {
                if message.hasSuffix(".") { message.removeLast() }
                message += " (see '\(helpCommand(arguments))')"
            }
            report(message)
            exit(status.rawValue)
        }
    }

    /// Prints `message` as every irm error is printed (`runReportingErrors`).
    private static func report(_ message: String) {
        _ = try? runReportingErrors { () throws -> Void in throw IRMError(message) }
    }

    /// ArgumentParser's message on one line, starting in lower case as irm's messages do
    /// ("Missing value for …" → "missing value for …"; "URL …" stays).
    static func oneLine(_ message: String) -> String {
        var text = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        if let first = text.first, first.isUppercase, let second = text.dropFirst().first, second.isLowercase {
            text = first.lowercased() + String(text.dropFirst())
        }
        return text.isEmpty ? "the command line cannot be read" : text
    }

    /// `irm SUBCOMMAND --help` for the subcommand `arguments` name, else `irm --help`.
    static func helpCommand(_ arguments: [String]) -> String {
        guard let first = arguments.first, subcommandNames.contains(first) else { return "irm --help" }
        return "irm \(first) --help"
    }

    static var subcommandNames: [String] {
        IRM.configuration.subcommands.compactMap { $0.configuration.commandName }
    }

    // MARK: Negative numbers

    /// `--name -1` as `--name=-1`, for each option `--name` that takes a value and is followed by
    /// a word that reads as a negative number (`-1`, `-0.5`, `-.5`, `-1e3`, `-inf`, `-nan`).
    ///
    /// ArgumentParser takes every word that starts with "-" for an option, so `--bootstrap -1`
    /// failed with "Missing value for '--bootstrap <bootstrap>'", which says nothing of what is
    /// wrong. irm has no option that a negative number could name, so the word can only be the
    /// value: given it, the command's own check says what is wrong with it ("--bootstrap must be 0
    /// or more, found -1"), or ArgumentParser says the value is invalid for the option. Words after
    /// `--` are left alone, and so are flags and options of other subcommands.
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        guard arguments.contains(where: looksNegative) else { return arguments }
        let takesValue = valueOptions(subcommand: arguments.first.flatMap { subcommandNames.contains($0) ? $0 : nil })
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            if word == "--" {
                out += arguments[i...]
                break
            }
            if word.hasPrefix("--"), !word.contains("="), takesValue.contains(String(word.dropFirst(2))),
               i + 1 < arguments.count, looksNegative(arguments[i + 1]) {
                out.append("\(word)=\(arguments[i + 1])")
                i += 2
                continue
            }
            out.append(word)
            i += 1
        }
        return out
    }

    /// "-" then a digit, "." and a digit, or inf, infinity, nan in any case.
    static func looksNegative(_ word: String) -> Bool {
        guard word.hasPrefix("-"), !word.hasPrefix("--") else { return false }
        let rest = word.dropFirst()
        if let first = rest.first, first.isASCII, first.isNumber { return true }
        if rest.hasPrefix("."), let second = rest.dropFirst().first, second.isASCII, second.isNumber { return true }
        return ["inf", "infinity", "nan"].contains(rest.lowercased())
    }

    /// The long names of the options (not flags) of `subcommand`, or of the root command for nil,
    /// from ArgumentParser's description of the command tree (`--experimental-dump-help`).
    static func valueOptions(subcommand: String?) -> Set<String> {
        guard let tree = try? JSONValue.parse(IRM._dumpHelp(), source: "irm's argument table"),
              let root = tree["command"] else { return [] }
        var command = root
        if let subcommand {
            guard let match = root["subcommands"]?.arrayValue?.first(where: { $0["commandName"]?.stringValue == subcommand }) else { return [] }
            command = match
        }
        var names: Set<String> = []
        for argument in command["arguments"]?.arrayValue ?? [] where argument["kind"]?.stringValue == "option" {
            for name in argument["names"]?.arrayValue ?? [] where name["kind"]?.stringValue == "long" {
                if let text = name["name"]?.stringValue { names.insert(text) }
            }
        }
        return names
    }
}
