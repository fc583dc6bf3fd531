// Fuzz target: IRMKit's JSON parser, and serialising what it parsed.
import Foundation
import IRMKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        let value = try JSONValue.parse(FuzzInput.data(bytes, size), source: "fuzz.json")
        let text = value.serialized()
        // What the parser produced, serialised, must parse again.
        _ = try JSONValue.parse(text, source: "fuzz.json (serialised)")
    } catch {}
    return 0
}
