import ArgumentParser
import Foundation
import IRMKit

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Work with score stores (docs/score-store.md).",
        subcommands: [StoreMergeCommand.self])
}

struct StoreMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the score stores of a sharded run's shards into one store.",
        discussion: """
            Each SHARD_STORE is the --store of one or more `--shard K/N` runs. The merge needs every shard of one run \
            (by the shard records the shards wrote at completion), refuses shards of different data, checkpoints, \
            conventions or irm versions naming what differs, and verifies every block before copying it. Nothing \
            is written unless all of it checks out. The final `irm analyze`/`drift` with --store INTO then reads \
            every score and scores nothing; its outputs are byte-identical to an unsharded run's with the same \
            --threads (docs/cluster.md).
            """)

    @Option(help: "The store to merge into (created when absent; it may be one of the shard stores).")
    var into: String

    @Argument(help: "The shards' score stores.")
    var shardStores: [String]

    @OptionGroup var output: OutputArguments

    func validate() throws {
        if shardStores.isEmpty { throw ValidationError("give the shards' score stores to merge") }
    }

    func run() throws {
        try runReportingErrors {
            let summary = try ScoreStoreMerge.merge(sources: shardStores.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: into))
            if !output.quiet {
                printNote("merged \(summary.shards) shards of run \(summary.runDigest.prefix(12)) (\(summary.command), \(summary.sampleCount) samples, \(summary.entries) entries) into \(into): \(summary.copiedBlocks) blocks copied, \(summary.presentBlocks) already there")
            }
        }
    }
}
