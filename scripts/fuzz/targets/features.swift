// Fuzz target: the features file, parsed as YAML and as JSON; the regex features it defines are
// then run on a fixed pair of texts (the linear-time matcher sees fuzzed patterns).
import Foundation
import IRMKit

private let inputs = [
    FeatureInput(prompt: "What is the price?", response: "It costs $12, or 12 dollars. ```code``` Sure!"),
    FeatureInput(prompt: "", response: "Ünïcödé 日本語\n\n\tdone."),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = FuzzInput.text(bytes, size)
    for spec in [try? FeatureSpecification.parse(text, format: .yaml, source: "fuzz.yaml"),
                 try? FeatureSpecification.parse(text, format: .json, source: "fuzz.json")] {
        guard let spec, !spec.regexFeatures.isEmpty else { continue }
        let regexOnly = FeatureSpecification(builtIns: .none, regexFeatures: spec.regexFeatures)
        _ = try? FeatureExtractor(fittingOn: inputs, specification: regexOnly).extract(inputs)
    }
    return 0
}
