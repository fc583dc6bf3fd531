/// The family a feature belongs to. The attribution stage decomposes R² by group.
public enum FeatureGroup: String, CaseIterable, Sendable, Codable {
    case length, repetition, relevance, format, sentiment, tone, readability, ending, custom
}

/// What a feature needs beyond the prompt and response text.
public enum FeatureRequirement: String, Sendable, Equatable {
    /// `FeatureInput.responseTokenCount` for every sample (the model tokenizer's count).
    case tokenCount
    /// `FeatureInput.hiddenStateCosine` for every sample.
    case hiddenStates
    /// At least one closed-ended sample (with a reference answer); otherwise the column would be
    /// constant 0.
    case referenceAnswers
    /// `FeatureInput.referenceHiddenStateCosine` for every closed-ended sample.
    case referenceHiddenStates
}

/// A named feature: its stable snake_case name (the CSV column), group, one-line definition and
/// unit. docs/features.md gives the full definitions and edge-case conventions.
public struct FeatureDefinition: Sendable, Equatable {
    public let name: String
    public let group: FeatureGroup
    public let definition: String
    public let unit: String
    public let requirement: FeatureRequirement?

    public init(name: String, group: FeatureGroup, definition: String, unit: String,
                requirement: FeatureRequirement? = nil) {
        self.name = name
        self.group = group
        self.definition = definition
        self.unit = unit
        self.requirement = requirement
    }
}

/// The built-in features, in column order.
enum BuiltinFeature: String, CaseIterable, Sendable {
    case responseTokens = "response_tokens"
    case logResponseTokens = "log_response_tokens"
    case responseWords = "response_words"
    case responseChars = "response_chars"
    case lengthIncentive = "length_incentive"

    case uniqueTrigramRatio = "unique_trigram_ratio"
    case distinct1 = "distinct_1"
    case distinct2 = "distinct_2"
    case longestRepeatedNGram = "longest_repeated_ngram"

    case promptWordRecall = "prompt_word_recall"
    case promptTfidfCosine = "prompt_tfidf_cosine"
    case hiddenStateCosine = "hidden_state_cosine"
    case closedEnded = "closed_ended"
    case referenceWordRecall = "reference_word_recall"
    case referenceTfidfCosine = "reference_tfidf_cosine"
    case referenceHiddenStateCosine = "reference_hidden_state_cosine"

    case listItems = "list_items"
    case numberedItems = "numbered_items"
    case markdownHeaders = "markdown_headers"
    case boldSpans = "bold_spans"
    case codeBlocks = "code_blocks"
    case lineBreaks = "line_breaks"
    case paragraphs = "paragraphs"

    case vaderSum = "vader_sum"
    case positiveWords = "positive_words"
    case negativeWords = "negative_words"

    case refusalMarkers = "refusal_markers"
    case apologyMarkers = "apology_markers"
    case hedgingMarkers = "hedging_markers"
    case firstPersonRate = "first_person_rate"
    case secondPersonRate = "second_person_rate"
    case questions = "questions"
    case exclamations = "exclamations"

    case wordsPerSentence = "words_per_sentence"
    case fleschReadingEase = "flesch_reading_ease"

    case endsCleanly = "ends_cleanly"
    case hasStopMarker = "has_stop_marker"

    var definition: FeatureDefinition {
        func d(_ group: FeatureGroup, _ unit: String, _ text: String,
               _ requirement: FeatureRequirement? = nil) -> FeatureDefinition {
            FeatureDefinition(name: rawValue, group: group, definition: text, unit: unit, requirement: requirement)
        }
        switch self {
        case .responseTokens:
            return d(.length, "tokens", "Response length in the model tokenizer's tokens (supplied by the caller).", .tokenCount)
        case .logResponseTokens:
            return d(.length, "log tokens", "ln(1 + response_tokens).", .tokenCount)
        case .responseWords:
            return d(.length, "words", "Number of word tokens: \\w+ runs of the nltk wordpunct split (punctuation runs excluded).")
        case .responseChars:
            return d(.length, "characters", "Number of Unicode scalars (code points) in the response, as Python's len().")
        case .lengthIncentive:
            return d(.length, "wordpunct tokens / 100", "Kim & Seo's length incentive: nltk wordpunct tokens (words and punctuation runs) of the cut response / 100.")
        case .uniqueTrigramRatio:
            return d(.repetition, "ratio", "Kim & Seo's repetition penalty: distinct / all wordpunct trigrams of the cut response (case kept); 1 with no trigram.")
        case .distinct1:
            return d(.repetition, "ratio", "distinct-1: distinct / all lower-cased word tokens; 1 with no word.")
        case .distinct2:
            return d(.repetition, "ratio", "distinct-2: distinct / all bigrams of lower-cased word tokens; 1 with no bigram.")
        case .longestRepeatedNGram:
            return d(.repetition, "words", "Largest n such that an n-gram of lower-cased word tokens occurs twice (overlaps allowed); 0 if none.")
        case .promptWordRecall:
            return d(.relevance, "ratio", "Share of the prompt's distinct content words (not stopwords, containing a letter) that occur in the response; 0 if the prompt has none.")
        case .promptTfidfCosine:
            return d(.relevance, "cosine", "Cosine of the TF-IDF vectors (raw tf, smoothed idf over the dataset) of prompt and response word tokens; 0 if either is empty.")
        case .hiddenStateCosine:
            return d(.relevance, "cosine", "Cosine of the before-policy's mean-pooled final hidden states of prompt and response (supplied by the engine).", .hiddenStates)
        case .closedEnded:
            return d(.relevance, "indicator", "1 for a closed-ended item (has a reference and qtype is closed or absent), else 0.", .referenceAnswers)
        case .referenceWordRecall:
            return d(.relevance, "ratio", "Share of the reference's distinct content words that occur in the response; 0 for open-ended items.", .referenceAnswers)
        case .referenceTfidfCosine:
            return d(.relevance, "cosine", "TF-IDF cosine of reference and response (Kim & Seo's RAR, lexical); 0 for open-ended items.", .referenceAnswers)
        case .referenceHiddenStateCosine:
            return d(.relevance, "cosine", "Hidden-state cosine of reference and response (supplied by the engine); 0 for open-ended items.", .referenceHiddenStates)
        case .listItems:
            return d(.format, "lines", "Lines starting with '-', '*', '+' or '•' and a space (outside code fences).")
        case .numberedItems:
            return d(.format, "lines", "Lines starting with 1-9 digits, '.' or ')' and a space (outside code fences).")
        case .markdownHeaders:
            return d(.format, "lines", "Lines starting (≤3 spaces indent) with 1-6 '#' and a space (outside code fences).")
        case .boldSpans:
            return d(.format, "spans", "'**text**' spans on one line, non-empty, non-overlapping, left to right.")
        case .codeBlocks:
            return d(.format, "blocks", "Fenced code blocks: ceil(fence lines / 2), a fence line starting with ``` or ~~~.")
        case .lineBreaks:
            return d(.format, "newlines", "Number of '\\n' characters.")
        case .paragraphs:
            return d(.format, "paragraphs", "Maximal runs of non-blank lines.")
        case .vaderSum:
            return d(.sentiment, "valence", "Sum of VADER valences over the lower-cased utility words (Marks et al.'s utility before /5 and clipping).")
        case .positiveWords:
            return d(.sentiment, "words", "Utility words with a positive VADER valence.")
        case .negativeWords:
            return d(.sentiment, "words", "Utility words with a negative VADER valence.")
        case .refusalMarkers:
            return d(.tone, "occurrences", "Occurrences of the fixed refusal phrase list (whole words, case-insensitive, non-overlapping).")
        case .apologyMarkers:
            return d(.tone, "occurrences", "Occurrences of the fixed apology phrase list.")
        case .hedgingMarkers:
            return d(.tone, "occurrences", "Occurrences of the fixed hedging phrase list.")
        case .firstPersonRate:
            return d(.tone, "per word", "First-person pronouns (i, me, my, mine, myself, we, us, our, ours, ourselves) / word tokens; 0 with no word.")
        case .secondPersonRate:
            return d(.tone, "per word", "Second-person pronouns (you, your, yours, yourself, yourselves) / word tokens; 0 with no word.")
        case .questions:
            return d(.tone, "runs", "Maximal runs of '?' or '？'.")
        case .exclamations:
            return d(.tone, "runs", "Maximal runs of '!' or '！'.")
        case .wordsPerSentence:
            return d(.readability, "words per sentence", "Word tokens / sentences; 0 with no word.")
        case .fleschReadingEase:
            return d(.readability, "score", "206.835 - 1.015 (words/sentences) - 84.6 (syllables/words); 0 with no word.")
        case .endsCleanly:
            return d(.ending, "indicator", "1 if the last non-space character is final punctuation, a closing bracket/quote, '`', '*', '>' or an emoji; else 0.")
        case .hasStopMarker:
            return d(.ending, "indicator", "1 if the response runs past its end: it contains a role marker or one of \"\\n\\n\\n\\n\", \"\\n\\n--\", \"\\n\\n____\" (Kim & Seo's cut).")
        }
    }
}

/// Every built-in feature, in the column order `FeatureExtractor` produces them.
public enum FeatureCatalogue {
    public static let builtIns: [FeatureDefinition] = BuiltinFeature.allCases.map(\.definition)

    /// The built-in feature called `name`, or nil.
    public static func builtIn(named name: String) -> FeatureDefinition? {
        BuiltinFeature(rawValue: name)?.definition
    }

    /// The built-in features of `group`.
    public static func builtIns(in group: FeatureGroup) -> [FeatureDefinition] {
        builtIns.filter { $0.group == group }
    }
}
