import ArgumentParser
import IRMKit

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an irm checkpoint's format, configuration, tensors, tokenizer and provenance, and validate it.",
        discussion: "Exits with status 1 when validation finds a missing, unexpected or misshaped tensor, or (with --check-values) a NaN or infinity, or a tensor whose bytes do not match its stored crc32.")

    @Argument(help: "The checkpoint (.h5).")
    var checkpoint: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Also read every tensor, count NaN and infinite values, and check each tensor's stored crc32.")
    var checkValues = false

    func run() throws {
        let inspection = try runReportingErrors {
            try CheckpointInspection(checkpoint: try Checkpoint.open(path: checkpoint), checkValues: checkValues)
        }
        print(json ? try inspection.jsonText() : inspection.text())
        if !inspection.isValid { throw ExitCode(1) }
    }
}
