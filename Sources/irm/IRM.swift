import ArgumentParser
import IRMKit

@main
struct IRM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irm",
        abstract: "The implicit reward model interpreter.",
        version: IRMVersion.string,
        subcommands: [ConvertCommand.self, InspectCommand.self, TokenizeCommand.self, ScoreCommand.self, AnalyzeCommand.self, DriftCommand.self]
    )
}
