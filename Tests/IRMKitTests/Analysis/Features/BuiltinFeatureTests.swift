import Foundation
import XCTest
@testable import IRMKit

/// The built-in features of the last sample of `inputs`, by name, with the IDF fitted on `inputs`.
func builtinFeatures(_ inputs: [FeatureInput], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Double] {
    let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
    let row = inputs.count - 1
    var out: [String: Double] = [:]
    for (j, name) in table.names.enumerated() { out[name] = table.matrix[row, j] }
    return out
}

func builtinFeatures(response: String, prompt: String = "", reference: String? = nil,
                     tokens: Int? = nil) throws -> [String: Double] {
    try builtinFeatures([FeatureInput(prompt: prompt, response: response, reference: reference, responseTokenCount: tokens)])
}

/// Hand-computed values for every built-in feature. Each expected number is worked out in the
/// comment beside it.
final class BuiltinFeatureTests: XCTestCase {
    func testCatalogueNamesAreUniqueSnakeCaseAndCoverTheGroups() {
        let names = FeatureCatalogue.builtIns.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertGreaterThanOrEqual(names.count, 25)
        for name in names {
            XCTAssertNotNil(name.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression), name)
        }
        let groups = Set(FeatureCatalogue.builtIns.map(\.group))
        XCTAssertEqual(groups, Set(FeatureGroup.allCases).subtracting([.custom]))
        for d in FeatureCatalogue.builtIns {
            XCTAssertFalse(d.definition.isEmpty, d.name)
            XCTAssertFalse(d.unit.isEmpty, d.name)
        }
        XCTAssertEqual(FeatureCatalogue.builtIn(named: "vader_sum")?.group, .sentiment)
        XCTAssertEqual(FeatureCatalogue.builtIns(in: .readability).map(\.name), ["words_per_sentence", "flesch_reading_ease"])
    }

    func testLengthFeatures() throws {
        // wordpunct tokens: Hello , world ! Hello again .  → 7; word tokens: hello world hello again → 4.
        let f = try builtinFeatures(response: "Hello, world! Hello again.", tokens: 6)
        XCTAssertEqual(f["response_tokens"], 6)
        assertClose(f["log_response_tokens"] ?? .nan, 1.9459101490553132, relative: 1e-15)  // ln(1 + 6) = ln 7
        XCTAssertEqual(f["response_words"], 4)
        XCTAssertEqual(f["response_chars"], 26)  // "Hello," 6 + " " + "world!" 6 + " " + "Hello" 5 + " " + "again." 6
        assertClose(f["length_incentive"] ?? .nan, 0.07, relative: 1e-15)  // 7 wordpunct tokens / 100
        // Characters are code points: "e" + U+0301 is 2, "😀" is 1, "日本" is 2.
        XCTAssertEqual(try builtinFeatures(response: "e\u{301}😀日本")["response_chars"], 5)
    }

    func testTokenFeaturesAreSkippedWithoutCountsAndRejectedWhenPartial() throws {
        let inputs = [FeatureInput(prompt: "p", response: "a"), FeatureInput(prompt: "p", response: "b")]
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        XCTAssertNil(table.column(named: "response_tokens"))
        XCTAssertEqual(Set(table.skipped.map(\.name)), [
            "response_tokens", "log_response_tokens", "hidden_state_cosine", "closed_ended",
            "reference_word_recall", "reference_tfidf_cosine", "reference_hidden_state_cosine",
        ])
        var partial = inputs
        partial[0].responseTokenCount = 3
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: partial).extract(partial)) { error in
            XCTAssertTrue("\(error)".contains("sample 2 lacks responseTokenCount"), "\(error)")
        }
    }

    func testRepetitionFeatures() throws {
        // the cat sat the cat sat the cat: 8 words, 3 distinct → distinct-1 = 3/8.
        // bigrams: the·cat cat·sat sat·the the·cat cat·sat sat·the the·cat → 3 distinct of 7.
        // trigrams (wordpunct = words here): 6, of which 3 distinct → 0.5.
        // "the cat sat the cat" starts at 0 and at 3 (overlapping) → 5; no 6-gram repeats.
        let f = try builtinFeatures(response: "the cat sat the cat sat the cat")
        XCTAssertEqual(f["distinct_1"], 3.0 / 8)
        XCTAssertEqual(f["distinct_2"], 3.0 / 7)
        XCTAssertEqual(f["unique_trigram_ratio"], 0.5)
        XCTAssertEqual(f["longest_repeated_ngram"], 5)

        // Hello , world ! Hello again . → 5 trigrams, all distinct; words hello world hello again:
        // distinct-1 = 3/4, bigrams hello·world world·hello hello·again all distinct → 1; "hello" repeats → 1.
        let g = try builtinFeatures(response: "Hello, world! Hello again.")
        XCTAssertEqual(g["unique_trigram_ratio"], 1)
        XCTAssertEqual(g["distinct_1"], 0.75)
        XCTAssertEqual(g["distinct_2"], 1)
        XCTAssertEqual(g["longest_repeated_ngram"], 1)

        // Fewer than n tokens: no n-gram, nothing repeats → 1; no repeated word → 0.
        let h = try builtinFeatures(response: "Alone")
        XCTAssertEqual(h["distinct_2"], 1)
        XCTAssertEqual(h["unique_trigram_ratio"], 1)
        XCTAssertEqual(h["longest_repeated_ngram"], 0)
        // Overlap allowed: "a a a" repeats the 2-gram "a a" (at 0 and 1).
        XCTAssertEqual(RepetitionMeasures.longestRepeatedNGram(["a", "a", "a"]), 2)
        // Case: distinct-n uses lower-cased words, K&S's trigram ratio keeps case.
        let k = try builtinFeatures(response: "A b c a B C")
        XCTAssertEqual(k["distinct_1"], 0.5)  // a b c a b c → 3/6
        XCTAssertEqual(k["unique_trigram_ratio"], 1)  // A b c / b c a / c a B / a B C all distinct
    }

    func testRepetitionMeasuresMatchPlainReferences() {
        // Plain references: longest common prefix of two suffixes, maximised over pairs (O(L²)), and
        // distinct-n from a set of joined n-gram strings.
        func plainLongest(_ t: [String]) -> Int {
            var best = 0
            for i in t.indices {
                for j in (i + 1)..<t.count {
                    var k = 0
                    while j + k < t.count, t[i + k] == t[j + k] { k += 1 }
                    best = max(best, k)
                }
            }
            return best
        }
        func plainDistinct(_ t: [String], _ n: Int) -> Double {
            guard t.count >= n else { return 1 }
            let grams = (0...(t.count - n)).map { t[$0..<($0 + n)].joined(separator: " ") }
            return Double(Set(grams).count) / Double(grams.count)
        }
        var random = SeededRandom(seed: 7)
        for trial in 0..<200 {
            let alphabet = 1 + random.index(below: 6)
            let tokens = (0..<random.index(below: 60)).map { _ in "w\(random.index(below: alphabet))" }
            XCTAssertEqual(RepetitionMeasures.longestRepeatedNGram(tokens), plainLongest(tokens), "trial \(trial): \(tokens)")
            for n in 1...4 {
                XCTAssertEqual(RepetitionMeasures.distinctRatio(tokens, n: n), plainDistinct(tokens, n), "trial \(trial), n \(n)")
            }
        }
    }

    func testPromptRelevance() throws {
        // Prompt content words (stopwords how, do dropped): plants, make, food → all in the response.
        let f = try builtinFeatures(response: "Plants make food from sunlight.", prompt: "How do plants make food?")
        XCTAssertEqual(f["prompt_word_recall"], 1)
        // describe, red, fox, gray, wolf (the, and are stopwords); red and fox occur → 2/5.
        let g = try builtinFeatures(response: "The red fox is fast.", prompt: "Describe the red fox and the gray wolf.")
        XCTAssertEqual(g["prompt_word_recall"], 0.4)
        // A prompt of stopwords only has no content word → 0.
        XCTAssertEqual(try builtinFeatures(response: "yes it is", prompt: "Is it?")["prompt_word_recall"], 0)
    }

    func testTfidfCosineByHand() throws {
        // Documents: prompts "red fox", "blue sky" and responses "red fox red", "red sky"; N = 4.
        // df: red 3, fox 2, sky 2, blue 1 → idf = ln(5/(1+df)) + 1:
        //   a = idf(red) = ln(5/4) + 1 = 1.2231435513142097, b = idf(fox) = idf(sky) = ln(5/3) + 1,
        //   c = idf(blue) = ln(5/2) + 1.
        // Sample 1: prompt (a, b), response (2a, b): (2a² + b²) / (√(a² + b²) √(4a² + b²)) = 0.9437583080666201.
        // Sample 2: prompt blue c, sky b; response red a, sky b: b² / (√(c² + b²) √(a² + b²)) = 0.48120116851601125.
        let inputs = [FeatureInput(prompt: "red fox", response: "red fox red"),
                      FeatureInput(prompt: "blue sky", response: "red sky")]
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        let cosine = try XCTUnwrap(table.column(named: "prompt_tfidf_cosine"))
        assertClose(cosine, [0.9437583080666201, 0.48120116851601125], relative: 1e-14)

        let idf = InverseDocumentFrequency(inputs: inputs)
        XCTAssertEqual(idf.documentCount, 4)
        XCTAssertEqual(idf.documentFrequency(of: "red"), 3)
        assertClose(idf.idf("red"), 1.2231435513142097, relative: 1e-15)
        assertClose(idf.idf("unseen"), log(5.0) + 1, relative: 1e-15)  // df 0
        // A prompt repeated for several responses counts once.
        let repeated = InverseDocumentFrequency(inputs: inputs + [FeatureInput(prompt: "red fox", response: "x")])
        XCTAssertEqual(repeated.documentCount, 5)
        XCTAssertEqual(idf.cosine([], ["red"]), 0)
    }

    func testReferenceRelevanceForClosedEndedItems() throws {
        let open = FeatureInput(prompt: "Tell me about Paris.", response: "It is Paris.")
        let closed = FeatureInput(prompt: "What is the capital of France?", response: "It is Paris.",
                                  reference: "Paris is the capital of France", qtype: "closed")
        let same = FeatureInput(prompt: "Capital?", response: "Paris", reference: "Paris")
        let explicitOpen = FeatureInput(prompt: "Capital?", response: "Paris", reference: "Paris", qtype: "open")
        let inputs = [open, closed, same, explicitOpen]
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        // Closed-ended: a reference and qtype closed or absent; an explicit "open" wins.
        XCTAssertEqual(table.column(named: "closed_ended"), [0, 1, 1, 0])
        // Reference content words paris, capital, france; only paris occurs → 1/3. Open items → 0.
        assertClose(try XCTUnwrap(table.column(named: "reference_word_recall")), [0, 1.0 / 3, 1, 0], relative: 1e-15)
        // Identical word bags have cosine 1 whatever the idf.
        let cosine = try XCTUnwrap(table.column(named: "reference_tfidf_cosine"))
        XCTAssertEqual(cosine[0], 0)
        assertClose(cosine[2], 1, relative: 1e-15)
        XCTAssertEqual(cosine[3], 0)
        XCTAssertGreaterThan(cosine[1], 0)
        XCTAssertLessThan(cosine[1], 1)
    }

    func testHiddenStateCosineSlot() throws {
        var inputs = [FeatureInput(prompt: "a", response: "b", hiddenStateCosine: 0.25),
                      FeatureInput(prompt: "c", response: "d", hiddenStateCosine: -0.5)]
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        XCTAssertEqual(table.column(named: "hidden_state_cosine"), [0.25, -0.5])
        inputs[1].hiddenStateCosine = nil
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: inputs).extract(inputs))
        // cos((1, 0), (1, 1)) = 1/√2; the zero vector gives 0 by convention.
        assertClose(HiddenStateRelevance.cosine([1, 0], [1, 1]), 1 / 2.0.squareRoot(), relative: 1e-15)
        XCTAssertEqual(HiddenStateRelevance.cosine([0, 0], [1, 1]), 0)
    }

    func testFormatFeatures() throws {
        let text = """
        # Title
        Intro with **bold** and **more bold**.

        - item one
        * item two
        1. first
        2) second
        ```swift
        # not a header
        - not an item
        ```
        Last line
        """
        let f = try builtinFeatures(response: text)
        XCTAssertEqual(f["markdown_headers"], 1)  // "# Title"; the fenced "# not a header" is code
        XCTAssertEqual(f["list_items"], 2)        // "- item one", "* item two"
        XCTAssertEqual(f["numbered_items"], 2)    // "1. first", "2) second"
        XCTAssertEqual(f["bold_spans"], 2)        // **bold**, **more bold**
        XCTAssertEqual(f["code_blocks"], 1)       // two fence lines
        XCTAssertEqual(f["line_breaks"], 11)      // 12 lines
        XCTAssertEqual(f["paragraphs"], 2)        // lines 1–2, then lines 4–12 after the blank line

        XCTAssertEqual(FormatCounts("```\nunclosed").codeBlocks, 1)  // ceil(1/2)
        XCTAssertEqual(FormatCounts("****").boldSpans, 0)            // no text between the pairs
        XCTAssertEqual(FormatCounts("** x").boldSpans, 0)            // no closing pair
        XCTAssertEqual(FormatCounts("***x***").boldSpans, 1)         // opens at 0, text "*x", closes at 4
        XCTAssertEqual(FormatCounts("**a\nb**").boldSpans, 0)        // not across lines
        XCTAssertEqual(FormatCounts("#NoSpace\n####### seven\n    # indented code").headers, 0)
        XCTAssertEqual(FormatCounts("-no space\n--- rule").listItems, 0)
        XCTAssertEqual(FormatCounts("1234567890. ten digits\n3.14 pi").numberedItems, 0)
        XCTAssertEqual(FormatCounts("a\n\n\n b\nc\n \n").paragraphs, 2)  // blank lines may hold spaces
        XCTAssertEqual(FormatCounts("one\r\ntwo").lineBreaks, 1)
    }

    func testSentimentFeatures() throws {
        // VADER valences: love 3.2, terrible −2.1, ":(" −1.9; "i", "this", "it", "is" are unlisted.
        // Sum 3.2 − 2.1 − 1.9 = −0.8; one positive word, two negative.
        let f = try builtinFeatures(response: "I love this. It is terrible :(")
        assertClose(f["vader_sum"] ?? .nan, -0.8, absolute: 1e-12)
        XCTAssertEqual(f["positive_words"], 1)
        XCTAssertEqual(f["negative_words"], 2)
    }

    func testToneFeatures() throws {
        // Words: i m sorry but i can t help with that perhaps you could ask someone else i think you might → 20.
        // refusal "i can't help" 1; apology "sorry" 1; hedging perhaps, "i think", might → 3
        // ("could" alone is not listed); first person i ×3 → 3/20; second person you ×2 → 2/20.
        let f = try builtinFeatures(response: "I'm sorry, but I can't help with that. Perhaps you could ask someone else? I think you might!")
        XCTAssertEqual(f["response_words"], 20)
        XCTAssertEqual(f["refusal_markers"], 1)
        XCTAssertEqual(f["apology_markers"], 1)
        XCTAssertEqual(f["hedging_markers"], 3)
        XCTAssertEqual(f["first_person_rate"], 0.15)
        XCTAssertEqual(f["second_person_rate"], 0.1)
        XCTAssertEqual(f["questions"], 1)
        XCTAssertEqual(f["exclamations"], 1)
        // Runs count once; fullwidth marks count.
        let g = try builtinFeatures(response: "Really?!? What?? Wow!!! 好！")
        XCTAssertEqual(g["questions"], 3)     // "?" in "?!?" twice, "??" once
        XCTAssertEqual(g["exclamations"], 3)  // "!" in "?!?", "!!!", "！"
    }

    func testPhraseMatchingRespectsWordBoundariesAndDoesNotOverlap() {
        // "sorry" inside "sorryful" is not a word match; "I can’t help" with a curly apostrophe matches.
        XCTAssertEqual(PhraseList.apology.count(in: "sorryful unsorry"), 0)
        XCTAssertEqual(PhraseList.refusal.count(in: "I can’t help. I CAN'T HELP"), 2)
        // Longest first: "as an ai" is one refusal; "i won't" then "i will not" → 3 in all.
        XCTAssertEqual(PhraseList.refusal.count(in: "As an AI, I won't, and I will not."), 3)
        XCTAssertEqual(PhraseList(["a b", "b c"]).count(in: "a b c"), 1)  // resumes after "a b"
    }

    func testReadabilityFeatures() throws {
        // Sentences: "The cat sat." and "The dog ran away quickly!" → 2; 8 words → 4 words per sentence.
        // Syllables: the, cat, sat, the, dog, ran → 1 each; away (a|ay) 2; quickly (ui|y) 2 → 10.
        // Flesch = 206.835 − 1.015·4 − 84.6·10/8 = 206.835 − 4.06 − 105.75 = 97.025.
        let f = try builtinFeatures(response: "The cat sat. The dog ran away quickly!")
        XCTAssertEqual(f["words_per_sentence"], 4)
        assertClose(f["flesch_reading_ease"] ?? .nan, 97.025, relative: 1e-14)

        XCTAssertEqual(Readability.syllables("cake"), 1)       // a|e, final silent e
        XCTAssertEqual(Readability.syllables("table"), 2)      // a|e, consonant + "le" keeps it
        XCTAssertEqual(Readability.syllables("beautiful"), 3)  // eau|i|u
        XCTAssertEqual(Readability.syllables("the"), 1)        // one run: the e is not dropped
        XCTAssertEqual(Readability.syllables("happy"), 2)      // a|y
        XCTAssertEqual(Readability.syllables("rhythm"), 1)     // y
        XCTAssertEqual(Readability.syllables("42"), 1)         // no vowel → at least 1

        XCTAssertEqual(Readability.sentenceCount("e.g. this"), 2)  // "e.g." ends at the space
        XCTAssertEqual(Readability.sentenceCount("3.14 is pi. Hello.World"), 2)
        XCTAssertEqual(Readability.sentenceCount("He said \"hi.\" Then left"), 2)
        XCTAssertEqual(Readability.sentenceCount("- one\n- two\n\n"), 2)
        XCTAssertEqual(Readability.sentenceCount("...!!! ???"), 0)
        XCTAssertEqual(Readability.sentenceCount(""), 0)
    }

    func testEndingFeatures() throws {
        XCTAssertEqual(try builtinFeatures(response: "Done.  \n")["ends_cleanly"], 1)
        XCTAssertEqual(try builtinFeatures(response: "This was cut off mid")["ends_cleanly"], 0)
        XCTAssertEqual(try builtinFeatures(response: "Have a nice day 😊")["ends_cleanly"], 1)
        XCTAssertEqual(try builtinFeatures(response: "Love ❤️")["ends_cleanly"], 1)  // ❤ + VS16
        XCTAssertEqual(try builtinFeatures(response: "He said \"hi.\"")["ends_cleanly"], 1)
        XCTAssertEqual(try builtinFeatures(response: "```\ncode\n```")["ends_cleanly"], 1)
        XCTAssertEqual(try builtinFeatures(response: "The list:,")["ends_cleanly"], 0)

        XCTAssertEqual(try builtinFeatures(response: "Answer.\n\nHuman: next question")["has_stop_marker"], 1)
        XCTAssertEqual(try builtinFeatures(response: "Answer.\n\n\n\nMore")["has_stop_marker"], 1)
        XCTAssertEqual(try builtinFeatures(response: "Answer.\n\n\n\n")["has_stop_marker"], 0)  // stripped first
        XCTAssertEqual(try builtinFeatures(response: "Answer. The human: a primate")["has_stop_marker"], 0)  // case-sensitive
    }
}
