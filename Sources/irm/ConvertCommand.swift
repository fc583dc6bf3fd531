import ArgumentParser
import Foundation
import IRMKit

extension HuggingFaceImporter.TargetDType: ExpressibleByArgument {}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face model directory (safetensors) into an irm checkpoint.",
        discussion: """
            Reads config.json, model.safetensors (or the shards listed in model.safetensors.index.json), \
            tokenizer.json and tokenizer_config.json. Supports the model types \(Architecture.supportedList) \
            (config.json's model_type), as causal LMs (policies) and as sequence-classification reward \
            models (docs/scoring.md lists what each computes). The output is \
            written to a temporary file and renamed into place only when complete.

            With --adapter, a PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) \
            is merged into the base weights as peft's merge_and_unload() does (W + alpha/r · B·A), after \
            every adapter tensor has been checked against the base; the provenance records the adapter \
            directory and its adapter_config.json. See docs/adapters.md.
            """)

    @Argument(help: "The Hugging Face model directory (the base model, when merging an adapter).")
    var modelDirectory: String

    @Argument(help: "The checkpoint to write (.h5).")
    var output: String

    @Option(help: "Storage type of the tensors: auto keeps each tensor's source type (\(HuggingFaceImporter.TargetDType.allCases.map(\.rawValue).joined(separator: "|"))).")
    var dtype: HuggingFaceImporter.TargetDType = .auto

    @Option(help: "A PEFT LoRA adapter directory to merge into the base weights.")
    var adapter: String?

    @Option(help: "A tokenizer.json to embed instead of the directory's own.")
    var tokenizer: String?

    @Option(help: "Provenance: the source model's name (default: config's _name_or_path or the directory name).")
    var sourceModel: String?

    @Option(help: "Provenance: the training step of this checkpoint.")
    var step: Int?

    @Option(help: "Provenance: the β (KL coefficient) used in training, a finite number > 0.")
    var beta: Double?

    @Option(help: "Provenance: free-form notes.")
    var notes: String?

    func run() throws {
        var options = HuggingFaceImporter.Options()
        options.dtype = dtype
        options.tokenizerPath = tokenizer
        options.sourceModel = sourceModel
        options.trainingStep = step
        options.beta = beta
        options.notes = notes
        options.adapterPath = adapter
        let report = try runReportingErrors {
            let claim = try claimOutput(output, as: .file, label: nil, warn: printWarning)
            defer { claim.release() }
            return try HuggingFaceImporter.convert(directory: modelDirectory, output: output, options: options)
        }
        print("wrote \(output): \(report.architecture.rawValue) \(report.kind.rawValue), \(report.tensorCount) tensors, \(report.parameterCount) parameters")
        for item in report.dropped { print("  dropped \(item)") }
        if let summary = report.adapterSummary { print("  merged \(summary) into \(report.adaptedTensorCount) tensors") }
        for warning in report.warnings { printWarning(warning) }
    }
}
