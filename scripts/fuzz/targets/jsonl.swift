// Fuzz target: the sample reader for data files (JSON lines or a JSON array), and the numeric
// fields it derives from each record.
import Foundation
import IRMKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let samples = try? SampleFile.parse(FuzzInput.data(bytes, size), source: "fuzz.jsonl", fileExtension: "jsonl") else {
        return 0
    }
    for sample in samples { _ = sample.numericFields }
    return 0
}
