// Fuzz target: the safetensors header parser and the tensor reads it guards.
import Foundation
import IRMKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.temporaryFile(bytes, size, suffix: ".safetensors") else { return 0 }
    do {
        let file = try SafetensorsFile(path: path)
        for name in file.entries.keys.sorted() {
            guard let entry = file.entries[name], entry.elementCount <= 1 << 20 else { continue }
            _ = try? file.floatValues(of: entry)
        }
    } catch {}
    return 0
}
