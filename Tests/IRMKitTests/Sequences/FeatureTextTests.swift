import Foundation
import XCTest
@testable import IRMKit

/// Text features see what a reader sees: no special tokens, template markup or role headers.
final class FeatureTextTests: XCTestCase {
    func testSpecialTokensAreRemovedBeforeTheFeatures() throws {
        let json = try String(contentsOf: Fixtures.url("hf/llama/tokenizer.json"), encoding: .utf8)
        let tokenizer = try Tokenizer(json: json, sourceDescription: "llama")
        let response = " It was a delight.</s>"
        XCTAssertTrue(Ending.endsCleanly(" It was a delight</s>"), "an EOS string looks like a closing tag")
        XCTAssertEqual(tokenizer.removingSpecialTokens(from: response), " It was a delight.")
        XCTAssertEqual(tokenizer.removingSpecialTokens(from: "<s>[INST] Hi [/INST] Yes</s><s>"), "[INST] Hi [/INST] Yes")
        XCTAssertTrue(Ending.endsCleanly(tokenizer.removingSpecialTokens(from: " It was a delight.</s>")))
        XCTAssertFalse(Ending.endsCleanly(tokenizer.removingSpecialTokens(from: " It was a delight</s>")))
        // Text without special tokens is returned as it is, non-ASCII included.
        XCTAssertEqual(tokenizer.removingSpecialTokens(from: "Café <unknown> 👍"), "Café <unknown> 👍")
    }

    func testChatMessagesGiveTheirContentOnly() throws {
        let samples = try SampleFile.parse(Data(#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Sky?"}]}], "completion": [{"role": "assistant", "content": "Blue."}]}"#.utf8), source: "chat.jsonl")
        XCTAssertEqual(samples[0].promptText, "Be brief.\n\nSky?")
        XCTAssertEqual(samples[0].responseText, "Blue.")
    }
}
