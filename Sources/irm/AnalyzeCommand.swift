import ArgumentParser
import Foundation
import IRMKit

extension ImplicitReward.Aggregation: ExpressibleByArgument {}
extension AnalysisOptions.Method: ExpressibleByArgument {}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Explain what fine-tuning rewarded: the implicit reward, its features, and how it diverges from the training reward.",
        discussion: """
            Scores every response under the policy before and after fine-tuning and takes the implicit reward \
            β·Σ_t [log π_after(y_t|x,y<t) − log π_before(y_t|x,y<t)] (or its mean per token), with the exact KL. \
            Explains it, and the training reward, with interpretable features (docs/features.md): OLS by LAPACK \
            dgelsd with classical and HC3 errors, LMG shares of R², ridge by GCV, optionally variational Bayes and \
            per-group fits. Compares the two rewards: correlations with bootstrap CIs, pair accuracy and agreement, \
            coefficient gaps, top disagreements, length control. Token-level: which tokens fine-tuning pushed up \
            and down.

            Data (docs/data-formats.md; JSON lines, a JSON array, CSV or TSV): "prompt" and "response" or \
            "completion", or "prompt", "chosen" and "rejected" (a preference pair), as text or chat messages; TRL's \
            implicit-prompt and HH-RLHF transcripts too. Text becomes tokens by --convention (default trl). \
            Optional: "id", "reward", "gold", "qtype" (open|closed), "reference", "policy" (which policy generated \
            the response), numeric fields for --features files. On a preference line, "chosen_NAME" and \
            "rejected_NAME" give per-response values of field NAME.

            Writes into --out: report.md, report.html, attribution.csv, samples.csv, tokens.csv, \
            divergence.json, manifest.json and plots/ (docs/analysis-outputs.md explains every column). --out is \
            checked and locked before the work and written as a whole (docs/outputs.md): built beside it and \
            swapped into place, so it holds the old analysis or the new one, never a mix, and nothing changes if \
            the analysis fails.
            """)

    @Option(help: "The policy before fine-tuning (.h5).")
    var before: String

    @Option(help: "The policy after fine-tuning (.h5).")
    var after: String

    @Option(help: "A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) merged in memory into --after, e.g. the DPO adapter over a converted base.")
    var afterAdapter: String?

    @Option(help: "A PEFT LoRA adapter directory merged in memory into --before.")
    var beforeAdapter: String?

    @Option(help: "Prompt/response data: JSON lines, a JSON array, CSV or TSV, or - for standard input (docs/data-formats.md).")
    var data: String

    @Option(help: "The output directory, e.g. analyses/NAME.")
    var out: String



    @OptionGroup var training: RewardArguments

    @Option(help: "β of the implicit reward (the KL coefficient used in training; default: the β recorded in --after's provenance, else 1).")
    var beta: Double?

    @Option(help: "sum (DPO's definition) or mean (per response token).")
    var rewardType: ImplicitReward.Aggregation = .sum

    @Option(help: "default (every built-in feature) or a features file (YAML or JSON; docs/features.md).")
    var features: String = "default"

    @Option(help: "A data field (e.g. qtype) whose values split the samples: per-group fits and a Chow test.")
    var groupBy: String?

    @Option(help: "Extra fit: ols (none) or vb (mean-field variational Bayes with ARD priors).")
    var method: AnalysisOptions.Method = .ols

    @Option(help: "Bootstrap replicates for confidence intervals (0: none).")
    var bootstrap: Int = 1000

    @Option(help: "Seed of every random choice (bootstrap, cross-validation folds).")
    var seed: UInt64 = 0

    @Option(help: "The data field holding a gold score.")
    var goldField: String = "gold"

    @Option(help: "The data field naming the policy that generated each response (for the length-normalised gain).")
    var sourceField: String = "policy"

    @Option(help: "The value of --source-field for the before-policy's responses (default: --before's file name without extension).")
    var beforeLabel: String?

    @Option(help: "The value of --source-field for the after-policy's responses (default: --after's file name without extension).")
    var afterLabel: String?

    @Option(help: "Compare the token reconstruction with a lexicon: vader (default with --reward vader-utility) or none.")
    var lexicon: String?

    @Option(help: "How many of the largest disagreements to list.")
    var top: Int = 10

    @Flag(help: "Analyse even when the two policies' tokenizers differ (the text is tokenised with the before-policy's).")
    var allowTokenizerMismatch = false

    @OptionGroup var sequence: SequenceArguments

    @OptionGroup var engine: ScoringArguments

    @OptionGroup var output: OutputArguments

    @OptionGroup var storage: StoreArguments

    @OptionGroup var sharding: ShardArguments

    func validate() throws {
        if let lexicon, !["vader", "none"].contains(lexicon) {
            throw ValidationError("--lexicon must be vader or none, found \"\(lexicon)\"")
        }
        if training.rewardModel.count > 1 { throw ValidationError("give one --reward-model (a series of reward models is for `irm drift`)") }
        if bootstrap < 0 { throw ValidationError("--bootstrap must be 0 or more, found \(bootstrap)") }
        if top < 0 { throw ValidationError("--top must be 0 or more, found \(top)") }
    }

    func run() throws {
        try runReportingErrors {
            let directory = URL(fileURLWithPath: out)
            if let shard = sharding.value {
                // Shards run side by side and write only into the store: --out is neither claimed nor written.
                let summary = try AnalysisPipeline.scoreShard(try options(directory), shard: shard, progress: output.progressOutput)
                ShardArguments.report(summary, output)
                return
            }
            let claim = try claimOutput(out, as: .directory, label: "--out", warn: output.warn)
            defer { claim.release() }
            let options = try options(directory)
            try claim.checkNothingInside([("--before", before), ("--after", after), ("--data", data)]
                + [("--before-adapter", beforeAdapter), ("--after-adapter", afterAdapter), ("--features", options.featuresPath),
                   ("--reward-model", training.rewardModel.first), ("--chat-template", sequence.chatTemplate),
                   ("--store", options.storeDirectory?.path)].compactMap { label, path in path.map { (label, $0) } })

            let started = Date()
            let result = try AnalysisPipeline.run(options, progress: output.progressOutput)
            try AnalysisReport.write(result, to: directory)
            if !output.quiet {
                print(AnalysisReport.summary(result, directory: out), terminator: "")
                print(String(format: "done in %.1f s", Date().timeIntervalSince(started)))
            }
        }
    }

    private func options(_ directory: URL) throws -> AnalysisOptions {
        var options = AnalysisOptions(beforePath: before, afterPath: after, dataPath: data)
        options.beforeAdapterPath = beforeAdapter
        options.afterAdapterPath = afterAdapter
        if let choice = training.choice { options.reward = choice }
        options.beta = beta
        options.aggregation = rewardType
        options.featuresPath = features == "default" ? nil : features
        options.groupBy = groupBy
        options.method = method
        options.bootstrapReplicates = bootstrap
        options.seed = seed
        options.goldField = goldField
        options.sourceField = sourceField
        options.beforeLabel = beforeLabel
        options.afterLabel = afterLabel
        options.compareWithLexicon = lexicon.map { $0 == "vader" }
        options.topDisagreements = top
        options.allowTokenizerMismatch = allowTokenizerMismatch
        options.scoring = engine.options
        options.sequences = sequence.options
        options.chatTemplatePath = sequence.chatTemplate
        options.templateDate = try sequence.date()
        options.storeDirectory = storage.directory(forOutput: directory)
        return options
    }
}
