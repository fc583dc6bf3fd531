import ArgumentParser
import IRMKit

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show the CPU, the BLAS library, the kernel in use (and how it was chosen) and the threads.",
        discussion: "irm replaces a generic OpenBLAS kernel (Prescott, Core2…) with the best one the CPU supports, unless OPENBLAS_CORETYPE or IRM_BLAS_CORETYPE is set (docs/scoring.md, section BLAS kernel). Exits with status 1 when the sgemm self-check fails.")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        if json {
            print(BLASRuntime.manifestObject().serialized(pretty: true))
        } else {
            print("irm \(IRMVersion.string)")
            let lines = BLASRuntime.report()
            let width = lines.map(\.0.count).max() ?? 0
            for (key, value) in lines { print("\(key.padding(toLength: width, withPad: " ", startingAt: 0))  \(value)") }
        }
        if BLASRuntime.selfCheck() != nil { throw ExitCode(1) }
    }
}
