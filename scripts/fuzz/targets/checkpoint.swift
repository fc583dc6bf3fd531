// Fuzz target: reading a checkpoint through HDF5: metadata, tensor checks, tensor reads, and
// building the model. Findings inside libhdf5 itself are reported upstream, not fixed here.
import Foundation
import IRMKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.temporaryFile(bytes, size, suffix: ".h5") else { return 0 }
    do {
        let checkpoint = try Checkpoint.open(path: path)
        _ = checkpoint.tensorProblems()
        _ = try? checkpoint.tokenizerSummary()
        _ = try? checkpoint.storedChatTemplate()
        guard checkpoint.parameterCount <= 4 << 20 else { return 0 }
        for tensor in checkpoint.tensors {
            _ = try? checkpoint.readTensor(tensor.name)
        }
        _ = try? ModelLoading.load(checkpoint: checkpoint)
    } catch {}
    return 0
}
