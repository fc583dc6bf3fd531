import ArgumentParser
import IRMKit

@main
struct IRM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irm",
        abstract: "The implicit reward model interpreter.",
        version: IRMVersion.string,
        subcommands: [ConvertCommand.self, InspectCommand.self, TokenizeCommand.self, ScoreCommand.self, AnalyzeCommand.self, DriftCommand.self, StoreCommand.self, DoctorCommand.self]
    )

    /// Chooses the BLAS kernel first (it may re-execute irm once with OPENBLAS_CORETYPE set),
    /// then runs the command, reporting a bad command line in one line (`ArgumentErrors`).
    static func main() {
        BLASRuntime.selectAtStartup()
        ArgumentErrors.main(Array(CommandLine.arguments.dropFirst()))
    }
}
