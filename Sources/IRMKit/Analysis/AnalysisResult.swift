import Foundation

/// Everything `irm analyze` computed, in sample order. `AnalysisPipeline` fills it; the report
/// writers (Report/AnalysisReport.swift) only format it, so every number in a report is here.
public struct AnalysisResult: Sendable {
    /// One input file, as the manifest records it.
    public struct InputFile: Sendable, Equatable {
        /// `before`, `after`, `data`, `reward-model`, `features`.
        public let role: String
        /// The path as the user gave it.
        public let path: String
        /// Lower-case hex SHA-256 of the file's bytes.
        public let sha256: String
        /// A one-line description (architecture, parameters, sample count, ...).
        public let summary: String

        public init(role: String, path: String, sha256: String, summary: String) {
            self.role = role
            self.path = path
            self.sha256 = sha256
            self.summary = summary
        }
    }

    /// One scored sample.
    public struct SampleRow: Sendable {
        public let id: String
        /// `chosen` / `rejected` for a side of a preference pair, nil otherwise.
        public let role: Sample.Role?
        /// 1-based line of the data file.
        public let line: Int
        public let prompt: String
        public let response: String
        /// Token counts under the policies' tokenizer.
        public let promptTokens: Int
        public let responseTokens: Int
        /// β·(log π_after − log π_before) per token, summed and averaged.
        public let implicitReward: ImplicitReward
        /// Σ_t log π_after and Σ_t log π_before over the response (nats).
        public let logProbAfter: Double
        public let logProbBefore: Double
        /// Σ_t KL(π_after ‖ π_before) at the response positions (nats).
        public let kl: Double
        /// The training reward model's score, when a reward source was given.
        public let rewardModel: Double?
        public let gold: Double?
        /// The value of the `--group-by` field.
        public let group: String?
        /// Which policy generated the response (the data's source field), when known.
        public let generator: String?
        /// The response has no tokens: it is kept, scores 0, and is flagged.
        public var isEmptyResponse: Bool { responseTokens == 0 }

        public init(id: String, role: Sample.Role?, line: Int, prompt: String, response: String, promptTokens: Int,
                    responseTokens: Int, implicitReward: ImplicitReward, logProbAfter: Double, logProbBefore: Double,
                    kl: Double, rewardModel: Double?, gold: Double?, group: String?, generator: String?) {
            self.id = id
            self.role = role
            self.line = line
            self.prompt = prompt
            self.response = response
            self.promptTokens = promptTokens
            self.responseTokens = responseTokens
            self.implicitReward = implicitReward
            self.logProbAfter = logProbAfter
            self.logProbBefore = logProbBefore
            self.kl = kl
            self.rewardModel = rewardModel
            self.gold = gold
            self.group = group
            self.generator = generator
        }
    }

    /// Where the training reward came from.
    public enum RewardSource: Sendable, Equatable {
        case rewardModel(path: String)
        case field(name: String)
        case vaderUtility
        case kimSeo
        case none

        /// Short human-readable description for reports.
        public var description: String {
            switch self {
            case .rewardModel(let path): "reward model \(path)"
            case .field(let name): "data field \"\(name)\""
            case .vaderUtility: "Marks et al. VADER utility (clip(Σ VADER[w] / 5, −10, 10))"
            case .kimSeo: "Kim & Seo white-box reward (length incentive × relevance × repetition penalty)"
            case .none: "none"
            }
        }
    }

    /// The linear explanations of one target (a score per sample).
    public struct TargetAnalysis: Sendable {
        /// Stable identifier used in CSV/JSON: `implicit_reward`, `reward_model`, `difference`, `gold`.
        public let name: String
        /// Human-readable description, e.g. "implicit reward (sum, β = 0.1)".
        public let description: String
        public let values: [Double]
        /// OLS on the standardised features with an intercept (LAPACK dgelsd).
        public let ols: StatisticOutcome<LeastSquaresFit>
        /// LMG shares of R², per feature (≤ 15 features) or per feature group; nil when the OLS fit
        /// is undefined.
        public let lmg: StatisticOutcome<ShapleyAttribution>?
        /// Whether the LMG players are single features or feature groups.
        public let lmgByGroup: Bool
        /// Ridge with λ by GCV.
        public let ridge: StatisticOutcome<RidgeFit>
        /// Mean-field VB with ARD priors, with `--method vb`.
        public let variationalBayes: StatisticOutcome<VariationalBayesRegression>?
        /// Per-group fits and the Chow test, with `--group-by`.
        public let grouped: StatisticOutcome<GroupedFit>?
        /// VIFs, the collinear sets (VIF > 10) and the parsimonious refit with one representative
        /// per set; nil when the OLS fit is undefined.
        public var collinearity: StatisticOutcome<CollinearityAnalysis>? = nil

        /// The fit the headlines quote (stdout summary, report summary, drift trajectories): the
        /// parsimonious fit when there are collinear sets, else the full OLS fit. The tables keep
        /// the full fit.
        public var headlineFit: LeastSquaresFit? { collinearity?.value?.parsimoniousFit ?? ols.value }

        public init(name: String, description: String, values: [Double], ols: StatisticOutcome<LeastSquaresFit>,
                    lmg: StatisticOutcome<ShapleyAttribution>?, lmgByGroup: Bool, ridge: StatisticOutcome<RidgeFit>,
                    variationalBayes: StatisticOutcome<VariationalBayesRegression>?, grouped: StatisticOutcome<GroupedFit>?) {
            self.name = name
            self.description = description
            self.values = values
            self.ols = ols
            self.lmg = lmg
            self.lmgByGroup = lmgByGroup
            self.ridge = ridge
            self.variationalBayes = variationalBayes
            self.grouped = grouped
        }
    }

    /// The resolved options, as the manifest records them (`key → value` as text, sorted by key).
    public let options: [(key: String, value: String)]
    public let toolVersion: String
    public let inputs: [InputFile]
    /// β and the aggregation used for the implicit reward.
    public let beta: Double
    public let aggregation: ImplicitReward.Aggregation
    public let rewardSource: RewardSource
    public let groupField: String?
    public let samples: [SampleRow]
    /// Pairs of sample indices (chosen, rejected) from preference lines.
    public let pairs: [Divergence.Pair]
    public let features: FeatureTable
    /// Implicit reward first, then the reward model, the difference z(implicit) − z(RM), and gold,
    /// as far as they exist.
    public let targets: [TargetAnalysis]
    /// nil without a reward source.
    public let divergence: Divergence?
    public let tokenReconstruction: TokenReconstruction
    /// With `--reward vader-utility` or `--lexicon vader`: how well the token reconstruction recovers
    /// the lexicon.
    public let lexiconRecovery: LexiconRecovery?
    /// Singhal et al.'s length-controlled gain of the after-policy's responses over the
    /// before-policy's, when the data says which policy generated each response.
    public let lengthNormalizedGain: [LengthNormalizedGain]
    /// TRL's `rewards/chosen`, `rewards/rejected`, `rewards/margins`, `rewards/accuracies` over the
    /// pairs (summed implicit reward); nil without pairs.
    public let trainerRewards: TrainerRewardMetrics?
    /// Things the reader must know (dropped features, conditioning, empty responses, ...).
    public let warnings: [String]

    public init(options: [(key: String, value: String)], toolVersion: String, inputs: [InputFile], beta: Double,
                aggregation: ImplicitReward.Aggregation, rewardSource: RewardSource, groupField: String?,
                samples: [SampleRow], pairs: [Divergence.Pair], features: FeatureTable, targets: [TargetAnalysis],
                divergence: Divergence?, tokenReconstruction: TokenReconstruction, lexiconRecovery: LexiconRecovery?,
                lengthNormalizedGain: [LengthNormalizedGain], trainerRewards: TrainerRewardMetrics? = nil, warnings: [String]) {
        self.trainerRewards = trainerRewards
        self.options = options
        self.toolVersion = toolVersion
        self.inputs = inputs
        self.beta = beta
        self.aggregation = aggregation
        self.rewardSource = rewardSource
        self.groupField = groupField
        self.samples = samples
        self.pairs = pairs
        self.features = features
        self.targets = targets
        self.divergence = divergence
        self.tokenReconstruction = tokenReconstruction
        self.lexiconRecovery = lexiconRecovery
        self.lengthNormalizedGain = lengthNormalizedGain
        self.warnings = warnings
    }

    /// The sequence-level implicit reward of each sample under the chosen aggregation.
    public var implicitRewards: [Double] { samples.map { $0.implicitReward.value(aggregation) } }

    /// The target called `name`, if it was analysed.
    public func target(_ name: String) -> TargetAnalysis? { targets.first { $0.name == name } }
}
