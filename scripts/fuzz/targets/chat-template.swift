// Fuzz target: the chat-template (Jinja) parser and renderer, with a small fixed conversation.
import Foundation
import ChatTemplate

private let context = ChatTemplate.chatContext(
    messages: [
        ["role": "system", "content": "You are helpful."],
        ["role": "user", "content": "Hi <b>there</b>"],
        ["role": "assistant", "content": "Hello!", "reasoning_content": "greet"],
        ["role": "user", "content": "Tools?"],
    ],
    addGenerationPrompt: true,
    specialTokens: ["bos_token": "<s>", "eos_token": "</s>"],
    tools: [["type": "function", "function": ["name": "f", "parameters": ["type": "object"]]]]
)
private let fixedDate = Date(timeIntervalSince1970: 1_700_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        let template = try ChatTemplate(source: FuzzInput.text(bytes, size))
        _ = try template.render(context, now: fixedDate)
    } catch {}
    return 0
}
