// Fuzz target: loading tokenizer.json, then encoding and decoding a fixed text.
import Foundation
import IRMKit

private let sampleText = "Hello, world! <|endoftext|> Ünïcödé 日本語 \t\n  123 don't"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        let tokenizer = try Tokenizer(json: FuzzInput.text(bytes, size), sourceDescription: "fuzz tokenizer.json")
        let encoding = tokenizer.encode(sampleText)
        _ = tokenizer.decode(encoding.ids, skipSpecialTokens: false)
        _ = tokenizer.decode(encoding.ids, skipSpecialTokens: true)
    } catch {}
    return 0
}
