import ArgumentParser
import Foundation
import IRMKit

struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Audit how the implicit reward drifted over a series of checkpoints tuned from one base.",
        discussion: """
            Scores the data under the base and under every checkpoint of the series, each against the base, with \
            the stages of `irm analyze`. For every step: the implicit reward's chosen/rejected means, margin and \
            pair accuracy (TRL's rewards/*), its agreement with gold, KL(step ‖ base) per token and per response, \
            its correlations with the training reward and gold, the standardised feature weights and LMG shares, \
            and its drift from the training reward (coefficient cosine, gap regression). Across the steps: the \
            proxy and gold reward each checkpoint earns on the data (self-normalised importance weighting), Kim & \
            Seo's monotonicity, the step where gold stops improving while the proxy rises (over-optimisation, with \
            a bootstrap test), the features whose weight kept rising while the proxy pays for them and gold does \
            not, and the layer divergence of every block. Steps are ordered by the training step recorded in \
            each checkpoint (irm convert --step), else by file name.

            Writes into --out: drift.md, drift.html, drift.csv, layers.csv, drift.json, manifest.json and plots/ \
            (docs/drift.md explains every column), atomically like `irm analyze`.
            """)

    @Option(help: "The base policy the series was tuned from (.h5).")
    var base: String

    @Option(name: .customLong("checkpoint"), help: "A checkpoint of the series (.h5); repeat for each, in any order.")
    var checkpoints: [String] = []

    @Option(name: .customLong("checkpoints"), help: "A glob of the series' checkpoints, e.g. 'runs/dpo/step-*.h5' (quote it); with or instead of --checkpoint.")
    var checkpointPattern: String?

    @Option(help: "Prompt/response data: JSON lines, a JSON array, CSV or TSV, or - for standard input (docs/data-formats.md).")
    var data: String

    @Option(help: "The output directory, e.g. analyses/NAME.")
    var out: String



    @OptionGroup var training: RewardArguments

    @Option(name: .customLong("reward-models"), help: "A glob of a reward-model series, one per checkpoint (quote it); the same as one --reward-model per checkpoint.")
    var rewardModelPattern: String?

    @Option(help: "The data field holding a gold score.")
    var goldField: String = "gold"

    @Option(help: "β of the implicit reward (default: each checkpoint's recorded β, else 1).")
    var beta: Double?

    @Option(help: "sum (DPO's definition) or mean (per response token).")
    var rewardType: ImplicitReward.Aggregation = .sum

    @Option(help: "default (every built-in feature) or a features file (YAML or JSON; docs/features.md).")
    var features: String = "default"

    @Option(help: "Bootstrap replicates for confidence intervals (0: none).")
    var bootstrap: Int = 1000

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 0

    @Flag(help: "Go on when a checkpoint's tokenizer differs from the base's (the text is tokenised with the base's).")
    var allowTokenizerMismatch = false

    @OptionGroup var sequence: SequenceArguments

    @OptionGroup var engine: ScoringArguments

    @OptionGroup var output: OutputArguments

    @OptionGroup var storage: StoreArguments

    @OptionGroup var sharding: ShardArguments

    func validate() throws {
        if bootstrap < 0 { throw ValidationError("--bootstrap must be 0 or more, found \(bootstrap)") }
        if rewardModelPattern != nil && (training.rewardField != nil || training.reward != nil) {
            throw ValidationError("give --reward-models, --reward-field or --reward, not several")
        }
    }

    func run() throws {
        try runReportingErrors {
            let directory = URL(fileURLWithPath: out)
            var paths = checkpoints
            if let checkpointPattern {
                let matches = try expandGlob(checkpointPattern, option: "--checkpoints")
                if matches.isEmpty { throw IRMError("--checkpoints \(checkpointPattern): no file matches") }
                paths += matches
            }
            var options = DriftOptions(basePath: base, checkpointPaths: paths, dataPath: data)
            var rewardModels = training.rewardModel
            if let rewardModelPattern {
                let matches = try expandGlob(rewardModelPattern, option: "--reward-models")
                if matches.isEmpty { throw IRMError("--reward-models \(rewardModelPattern): no file matches") }
                rewardModels += matches
            }
            if rewardModels.count > 1 {
                options.rewardModelSeries = rewardModels
            } else if let choice = training.choice {
                options.reward = choice
            }
            options.goldField = goldField
            options.beta = beta
            options.aggregation = rewardType
            options.featuresPath = features == "default" ? nil : features
            options.bootstrapReplicates = bootstrap
            options.seed = seed
            options.allowTokenizerMismatch = allowTokenizerMismatch
            options.scoring = engine.options
            options.sequences = sequence.options
            options.chatTemplatePath = sequence.chatTemplate
            options.templateDate = try sequence.date()
            options.storeDirectory = storage.directory(forOutput: directory)
            if let shard = sharding.value {
                // Shards run side by side and write only into the store: --out is neither claimed nor written.
                let summary = try DriftPipeline.scoreShard(options, shard: shard, progress: output.progressOutput)
                ShardArguments.report(summary, output)
                return
            }
            let claim = try claimOutput(out, as: .directory, label: "--out", warn: output.warn)
            defer { claim.release() }
            try claim.checkNothingInside([("--base", base), ("--data", data)] + paths.map { ("--checkpoint", $0) }
                + rewardModels.map { ("--reward-model", $0) }
                + [("--features", options.featuresPath), ("--chat-template", sequence.chatTemplate),
                   ("--store", options.storeDirectory?.path)].compactMap { label, path in path.map { (label, $0) } })

            let started = Date()
            let result = try DriftPipeline.run(options, progress: output.progressOutput)
            try DriftReport.write(result, to: directory)
            if !output.quiet {
                print("irm drift: \(result.steps.count) checkpoints against \(result.base.path), \(result.sampleCount) samples")
                for line in DriftReport.summaryLines(result) { print("- " + line) }
                print("files: \(out)/ (start with drift.md; drift.html, drift.csv, layers.csv, drift.json, manifest.json, plots/)")
                print(String(format: "done in %.1f s", Date().timeIntervalSince(started)))
            }
        }
    }
}

/// The paths matching a shell glob, sorted (the series is ordered by training step anyway).
func expandGlob(_ pattern: String, option: String) throws -> [String] {
    var result = glob_t()
    defer { globfree(&result) }
    let status = glob(pattern, 0, nil, &result)
    if status == GLOB_NOMATCH { return [] }
    guard status == 0 else { throw IRMError("\(option) \(pattern): the pattern could not be expanded (glob error \(status))") }
    return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }.sorted()
}
