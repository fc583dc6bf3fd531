import Foundation

/// `divergence.json` (every metric, machine-readable) and `manifest.json` (version, options,
/// inputs, outputs). Keys are sorted by `JSONValue.serialized`; numbers are the shortest decimals
/// that read back to the same double; a statistic that is undefined for the data is
/// `{"undefined": "reason"}`, one that was not computed (not asked for, no input) is `null`.
extension AnalysisReport {
    typealias JSONObject = [String: JSONValue]

    // MARK: Building blocks

    static func undefined(_ reason: String) -> JSONValue { .object(["undefined": .string(reason)]) }

    /// A finite number, `null` for nil, and an undefined marker for a non-finite value.
    static func number(_ value: Double?) -> JSONValue {
        guard let value else { return .null }
        guard value.isFinite else {
            return undefined(value.isNaN ? "not a number" : "\(NumberFormat.exact(value)): not a finite number")
        }
        return .double(value)
    }

    /// A number that is nil only when it is undefined for the data, for the stated reason.
    static func number(_ value: Double?, undefinedBecause reason: String) -> JSONValue {
        value == nil ? undefined(reason) : number(value)
    }

    static func integer(_ value: Int) -> JSONValue { .int(Int64(value)) }

    static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    static func outcome<T>(_ outcome: StatisticOutcome<T>?, _ body: (T) -> JSONValue) -> JSONValue {
        switch outcome {
        case nil: .null
        case .undefined(let reason)?: undefined(reason)
        case .defined(let value)?: body(value)
        }
    }

    // MARK: manifest.json

    /// The tool, its version, the options, each input's path, SHA-256 and summary, and the output
    /// files. Nothing that changes between runs on the same inputs (no time, no host, no timing).
    static func manifestDocument(_ result: AnalysisResult, outputs: [String]) -> JSONValue {
        let options = Dictionary(result.options.map { ($0.key, JSONValue.string($0.value)) }, uniquingKeysWith: { _, last in last })
        return .object([
            "tool": .string("irm"),
            "version": .string(result.toolVersion),
            "options": .object(options),
            "inputs": .array(result.inputs.map { input in
                .object(["role": .string(input.role), "path": .string(input.path), "sha256": .string(input.sha256),
                         "summary": .string(input.summary)])
            }),
            "outputs": strings(outputs),
            "blas": BLASRuntime.manifestObject(),
        ])
    }

    // MARK: divergence.json

    static func divergenceDocument(_ result: AnalysisResult) -> JSONValue {
        let noRewardModel = "no reward model was given (reward source: none), so there is nothing to compare the implicit reward with"
        let kl = meanMedianMax(result.samples.map(\.kl))
        return .object([
            "meta": metaObject(result),
            "targets": .array(result.targets.map(targetObject)),
            "divergence": result.divergence.map { divergenceObject($0, result: result) }
                ?? undefined(result.rewardSource == .none ? noRewardModel : "the divergence metrics were not computed"),
            "token_reconstruction": tokenReconstructionObject(result.tokenReconstruction),
            "lexicon_recovery": result.lexiconRecovery.map(lexiconRecoveryObject) ?? .null,
            "length_normalized_gain": .array(result.lengthNormalizedGain.map(lengthNormalizedGainObject)),
            "trl_rewards": result.trainerRewards.map(trainerRewardsObject) ?? undefined("the data has no preference pairs"),
            "kl": kl.map { .object(["mean": number($0.mean), "median": number($0.median), "max": number($0.max)]) }
                ?? undefined("there are no samples"),
            "empty_responses": integer(result.samples.filter(\.isEmptyResponse).count),
            "warnings": strings(result.warnings),
        ])
    }

    private static func metaObject(_ result: AnalysisResult) -> JSONValue {
        var source: JSONObject = ["description": .string(result.rewardSource.description)]
        switch result.rewardSource {
        case .rewardModel(let path): source["kind"] = .string("reward-model"); source["path"] = .string(path)
        case .field(let name): source["kind"] = .string("field"); source["field"] = .string(name)
        case .vaderUtility: source["kind"] = .string("vader-utility")
        case .kimSeo: source["kind"] = .string("kim-seo")
        case .none: source["kind"] = .string("none")
        }
        return .object([
            "tool": .string("irm"),
            "version": .string(result.toolVersion),
            "samples": integer(result.samples.count),
            "pairs": integer(result.pairs.count),
            "beta": number(result.beta),
            "aggregation": .string(result.aggregation.rawValue),
            "units": .string("nats"),
            "reward_source": .object(source),
            "group_field": result.groupField.map(JSONValue.string) ?? .null,
            "features": strings(result.features.names),
            "skipped_features": .array(result.features.skipped.map {
                .object(["name": .string($0.name), "reason": .string($0.reason)])
            }),
        ])
    }

    // MARK: Fits

    static func targetObject(_ target: AnalysisResult.TargetAnalysis) -> JSONValue {
        .object([
            "name": .string(target.name),
            "description": .string(target.description),
            "ols": outcome(target.ols, fitObject),
            "lmg": outcome(target.lmg) { lmgObject($0, byGroup: target.lmgByGroup) },
            "ridge": outcome(target.ridge, ridgeObject),
            "variational_bayes": outcome(target.variationalBayes, variationalBayesObject),
            "grouped": outcome(target.grouped, groupedObject),
            "collinearity": target.collinearity.map { outcome($0, collinearityObject) } ?? .null,
        ])
    }

    static func collinearityObject(_ c: CollinearityAnalysis) -> JSONValue {
        .object([
            "threshold": number(c.threshold),
            "vif": .object(Dictionary(c.varianceInflation.map { ($0.name, number($0.factor)) }, uniquingKeysWith: { a, _ in a })),
            "sets": .array(c.sets.map { set in
                .object([
                    "members": strings(set.memberNames), "representative": .string(set.representative),
                    "explanations": .array(set.explanations.map { e in
                        .object(["feature": .string(e.name), "round": number(Double(e.round)), "vif": number(e.factor),
                                 "explained_by": strings(e.explainedBy), "vif_without_them": number(e.factorWithoutThem)])
                    }),
                ])
            }),
            "rounds": number(Double(c.rounds)),
            "parsimonious_features": strings(c.parsimoniousFeatures),
            "parsimonious_vif": .object(Dictionary(c.parsimoniousVarianceInflation.map { ($0.name, number($0.factor)) },
                                                   uniquingKeysWith: { a, _ in a })),
            "parsimonious_fit": fitObject(c.parsimoniousFit),
        ])
    }

    static func coefficientObject(_ c: LeastSquaresFit.Coefficient) -> JSONValue {
        .object([
            "name": .string(c.name),
            "coef": number(c.estimate),
            "std_err": number(c.standardError),
            "hc3_std_err": number(c.robustStandardError, undefinedBecause: "a sample has leverage 1"),
            "t": number(c.tStatistic),
            "p_value": number(c.pValue),
            "hc3_p_value": number(c.robustPValue, undefinedBecause: "a sample has leverage 1"),
            "ci_low": number(c.confidenceLower),
            "ci_high": number(c.confidenceUpper),
            "std_coef": number(c.standardizedEstimate),
        ])
    }

    static func fitObject(_ fit: LeastSquaresFit) -> JSONValue {
        .object([
            "n": integer(fit.observationCount),
            "df_model": integer(fit.modelDegreesOfFreedom),
            "df_resid": integer(fit.residualDegreesOfFreedom),
            "r2": number(fit.rSquared),
            "adj_r2": number(fit.adjustedRSquared),
            "f": number(fit.fStatistic, undefinedBecause: "no feature is left in the model (df_model = 0)"),
            "f_p": number(fit.fPValue, undefinedBecause: "no feature is left in the model (df_model = 0)"),
            "cv_r2": number(fit.crossValidatedRSquared,
                            undefinedBecause: "too few samples for k-fold cross-validation (a training fold would have fewer rows than coefficients)"),
            "condition_number": number(fit.conditionNumber),
            "smallest_eigenvalue": number(fit.smallestEigenvalue),
            "rank": integer(fit.rank),
            "ssr": number(fit.residualSumOfSquares),
            "dropped": strings(fit.droppedConstantFeatures),
            "aliased": strings(fit.aliasedFeatures),
            "notes": strings(fit.notes),
            "intercept": coefficientObject(fit.intercept),
            "coefficients": .array(fit.coefficients.map(coefficientObject)),
        ])
    }

    static func intervalObject(_ interval: BootstrapInterval?) -> JSONValue {
        guard let interval else { return .null }
        return .object([
            "low": number(interval.lower), "high": number(interval.upper), "level": number(interval.level),
            "replicates": integer(interval.replicates), "undefined_replicates": integer(interval.undefinedReplicates),
        ])
    }

    private static func lmgObject(_ attribution: ShapleyAttribution, byGroup: Bool) -> JSONValue {
        .object([
            "r2": number(attribution.rSquared),
            "by_group": .bool(byGroup),
            "shares": .array(attribution.shares.map { share in
                .object(["name": .string(share.name), "members": strings(share.members), "share": number(share.share),
                         "ci": intervalObject(share.interval)])
            }),
        ])
    }

    private static func ridgeObject(_ ridge: RidgeFit) -> JSONValue {
        .object([
            "lambda": number(ridge.lambda),
            "edf": number(ridge.effectiveDegreesOfFreedom),
            "gcv": number(ridge.generalizedCrossValidation),
            "lambda_at_grid_boundary": .bool(ridge.lambdaAtGridBoundary),
            "intercept": number(ridge.intercept),
            "dropped": strings(ridge.droppedConstantFeatures),
            "coefficients": .array(ridge.coefficients.map {
                .object(["name": .string($0.name), "coef": number($0.estimate), "std_coef": number($0.standardizedEstimate)])
            }),
        ])
    }

    private static func variationalBayesObject(_ vb: VariationalBayesRegression) -> JSONValue {
        .object([
            "converged": .bool(vb.converged),
            "iterations": integer(vb.iterations),
            "elbo": number(vb.evidenceLowerBoundTrace.last, undefinedBecause: "no sweep ran"),
            "intercept": number(vb.intercept),
            "noise_precision": number(vb.expectedNoisePrecision),
            "dropped": strings(vb.droppedConstantFeatures),
            "coefficients": .array(vb.coefficients.map {
                .object([
                    "name": .string($0.name), "posterior_mean": number($0.posteriorMean), "posterior_sd": number($0.posteriorSD),
                    "credible_low": number($0.credibleLower), "credible_high": number($0.credibleUpper),
                    "std_posterior_mean": number($0.standardizedPosteriorMean),
                    "expected_precision": number($0.expectedPrecision), "relevance": number($0.relevance),
                ])
            }),
        ])
    }

    private static func groupedObject(_ grouped: GroupedFit) -> JSONValue {
        .object([
            "chow_f": number(grouped.chowF),
            "df1": integer(grouped.numeratorDegreesOfFreedom),
            "df2": integer(grouped.denominatorDegreesOfFreedom),
            "p_value": number(grouped.chowPValue),
            "pooled_r2": number(grouped.pooled.rSquared),
            "groups": .array(grouped.groups.map { group in
                .object([
                    "label": .string(group.label), "n": integer(group.fit.observationCount),
                    "r2": number(group.fit.rSquared), "adj_r2": number(group.fit.adjustedRSquared),
                    "intercept": coefficientObject(group.fit.intercept),
                    "coefficients": .array(group.fit.coefficients.map(coefficientObject)),
                ])
            }),
        ])
    }

    // MARK: Divergence

    static func correlationObject(_ estimate: CorrelationEstimate) -> JSONValue {
        .object(["value": number(estimate.value), "p_value": number(estimate.pValue), "n": integer(estimate.sampleCount),
                 "ci": intervalObject(estimate.interval)])
    }

    static func correlationSetObject(_ set: Divergence.CorrelationSet?) -> JSONValue {
        guard let set else { return .null }
        return .object([
            "first": .string(set.first), "second": .string(set.second),
            "pearson": outcome(set.pearson, correlationObject),
            "spearman": outcome(set.spearman, correlationObject),
            "kendall_tau_b": outcome(set.kendall, correlationObject),
        ])
    }

    static func accuracyObject(_ accuracy: StatisticOutcome<PairAccuracy>?) -> JSONValue {
        outcome(accuracy) { a in
            .object(["correct": integer(a.correct), "ties": integer(a.ties), "total": integer(a.total), "accuracy": number(a.accuracy)])
        }
    }

    private static func divergenceObject(_ d: Divergence, result: AnalysisResult) -> JSONValue {
        let lengths = d.lengthControl
        return .object([
            "correlations": .object([
                "implicit_vs_reward_model": correlationSetObject(d.implicitVersusRewardModel),
                "implicit_vs_gold": correlationSetObject(d.implicitVersusGold),
                "reward_model_vs_gold": correlationSetObject(d.rewardModelVersusGold),
            ]),
            "pair_accuracy": .object([
                "implicit_reward": accuracyObject(d.implicitPairAccuracy),
                "reward_model": accuracyObject(d.rewardModelPairAccuracy),
                "gold": accuracyObject(d.goldPairAccuracy),
            ]),
            "pair_agreement": outcome(d.pairAgreement) { a in
                .object(["agreeing": integer(a.agreeing), "ties_implicit_reward": integer(a.tiesFirst),
                         "ties_reward_model": integer(a.tiesSecond), "total": integer(a.total), "agreement": number(a.agreement)])
            },
            "coefficient_cosine": number(d.coefficientCosine,
                                         undefinedBecause: "one of the two fits is undefined or has no non-zero coefficient"),
            "coefficient_gaps": .array(d.coefficientGaps.map { gap in
                .object([
                    "feature": .string(gap.feature), "implicit_std_coef": number(gap.implicitCoefficient),
                    "reward_model_std_coef": number(gap.rewardModelCoefficient), "gap": number(gap.gap),
                    "ci_low": number(gap.confidenceLower), "ci_high": number(gap.confidenceUpper),
                    "p_value": number(gap.pValue), "hc3_p_value": number(gap.robustPValue, undefinedBecause: "a sample has leverage 1"),
                ])
            }),
            "difference_fit": outcome(d.differenceFit, fitObject),
            "top_disagreements": .array(d.topDisagreements.map { disagreement in
                let sample = result.samples.indices.contains(disagreement.index) ? result.samples[disagreement.index] : nil
                return .object([
                    "index": integer(disagreement.index), "id": sample.map { .string($0.id) } ?? .null,
                    "role": sample?.role.map { .string($0.rawValue) } ?? .null,
                    "implicit_z": number(disagreement.implicitZ), "reward_model_z": number(disagreement.rewardModelZ),
                    "difference": number(disagreement.difference),
                ])
            }),
            "length_control": .object([
                "bucket_width": integer(Divergence.LengthControl.bucketWidth),
                "buckets": .array(lengths.buckets.map { bucket in
                    .object(["lower_tokens": integer(bucket.lowerTokens), "upper_tokens": integer(bucket.upperTokens),
                             "n": integer(bucket.count), "mean_implicit_z": number(bucket.meanImplicitZ),
                             "mean_reward_model_z": number(bucket.meanRewardModelZ)])
                }),
                "implicit_eta_squared": number(lengths.implicitVarianceExplainedByLength),
                "reward_model_eta_squared": number(lengths.rewardModelVarianceExplainedByLength),
                "within_bucket_correlation": outcome(lengths.withinBucketCorrelation, correlationObject),
            ]),
        ])
    }

    // MARK: Tokens and length

    static let jsonTokenCount = 20

    static func trainerRewardsObject(_ t: TrainerRewardMetrics) -> JSONValue {
        var object: JSONObject = ["pairs": integer(t.pairCount), "beta": number(t.beta)]
        for metric in t.metrics {
            object[metric.name] = .object(["value": number(metric.value), "ci95": intervalObject(metric.interval)])
        }
        return .object(object)
    }

    private static func tokenObject(_ effect: TokenReconstruction.TokenEffect) -> JSONValue {
        .object(["token_id": integer(Int(effect.tokenID)), "token": .string(effect.text), "count": integer(effect.count),
                 "mean_reward": number(effect.meanReward), "coefficient": number(effect.coefficient)])
    }

    private static func tokenReconstructionObject(_ reconstruction: TokenReconstruction) -> JSONValue {
        .object([
            "lambda": number(reconstruction.lambda),
            "intercept": number(reconstruction.intercept),
            "scored_tokens": integer(reconstruction.scoredTokenCount),
            "modelled_tokens": integer(reconstruction.effects.count),
            "pushed_up": .array(reconstruction.pushedUp(jsonTokenCount).map(tokenObject)),
            "pushed_down": .array(reconstruction.pushedDown(jsonTokenCount).map(tokenObject)),
        ])
    }

    private static func lexiconRecoveryObject(_ recovery: LexiconRecovery) -> JSONValue {
        let noStrong = "no matched word has a lexicon value ≥ 2"
        return .object([
            "matched_words": integer(recovery.matches.count),
            "kendall_tau_b": outcome(recovery.kendall, correlationObject),
            "sign_agreement": number(recovery.signAgreement, undefinedBecause: "no matched word has a non-zero lexicon value"),
            "strong_positive_count": integer(recovery.strongPositiveCount),
            "recovered_share": number(recovery.recoveredShare, undefinedBecause: noStrong),
            "badly_wrong_share": number(recovery.badlyWrongShare, undefinedBecause: noStrong),
        ])
    }

    private static func lengthNormalizedGainObject(_ gain: LengthNormalizedGain) -> JSONValue {
        let noMatch = "no length bucket holds responses of both policies"
        return .object([
            "score": .string(gain.score),
            "raw_gain": number(gain.rawGain),
            "nrg": number(gain.normalizedGain, undefinedBecause: noMatch),
            "ratio": number(gain.ratio, undefinedBecause: gain.normalizedGain == nil ? noMatch : "the raw gain is 0"),
            "unmatched_responses": integer(gain.unmatchedCount),
            "buckets": .array(gain.buckets.map { bucket in
                .object(["lower_tokens": integer(bucket.lowerTokens), "upper_tokens": integer(bucket.upperTokens),
                         "before_count": integer(bucket.beforeCount), "after_count": integer(bucket.afterCount),
                         "before_mean": number(bucket.beforeMean), "after_mean": number(bucket.afterMean)])
            }),
        ])
    }
}
