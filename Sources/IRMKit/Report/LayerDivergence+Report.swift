import Foundation

extension LayerDivergence {
    /// The columns of `layers.csv`.
    public static let csvColumns = ["step", "label", "comparison", "group", "tensor", "relative", "absolute", "base_norm"]

    /// `layers.csv`: for each comparison in order (each step against the base, then against the
    /// previous checkpoint), each group in `TensorGroup`'s order as one row with an empty `tensor`,
    /// followed by one row per tensor of that group, by name. Numbers are written with full
    /// round-trip precision (`NumberFormat.exact`); an undefined relative divergence (a reference
    /// norm of 0) and an unknown step are empty cells. `base_norm` is the norm of the reference's
    /// tensor or group: the base's, or the previous checkpoint's.
    public func csvTable() throws -> CSVTable {
        var table = CSVTable(columns: Self.csvColumns)
        for comparison in comparisons {
            let step = comparison.checkpoint.step.map(String.init) ?? ""
            let prefix = [step, comparison.checkpoint.label, comparison.reference.rawValue]
            for group in comparison.groups {
                try table.append(prefix + [group.group.name, "", group.relative.map(NumberFormat.exact) ?? "",
                                           NumberFormat.exact(group.absolute), NumberFormat.exact(group.baseNorm)])
                for tensor in comparison.tensors where tensor.group == group.group.name {
                    try table.append(prefix + [group.group.name, tensor.tensor, tensor.relative.map(NumberFormat.exact) ?? "",
                                               NumberFormat.exact(tensor.absolute), NumberFormat.exact(tensor.baseNorm)])
                }
            }
        }
        return table
    }

    /// Writes `csvTable()` to `url` atomically (a temporary file renamed into place).
    public func writeCSV(to url: URL) throws {
        try AtomicOutput.write(Data(try csvTable().text.utf8), to: url)
    }

    /// A heatmap of the relative divergence of every group (rows, in `TensorGroup`'s order) at every
    /// step (columns, in series order) against `reference`. A column is labelled with its training
    /// step when known, else with the checkpoint's label.
    public func heatmap(against reference: Reference) throws -> String {
        let selected = comparisons(against: reference)
        let rows = groups
        let values = rows.map { group in selected.map { $0.group(group.name)?.relative } }
        let columnLabels = selected.map { $0.checkpoint.step.map(String.init) ?? $0.checkpoint.label }
        let title = reference == .base ? "Weight change against the base (‖Δθ‖ / ‖θ_base‖)"
            : "Weight change against the previous checkpoint (‖Δθ‖ / ‖θ_prev‖)"
        let steps = selected.allSatisfy { $0.checkpoint.step != nil }
        return try SVGHeatmap.render(title: title, rowLabels: rows.map(\.name), columnLabels: columnLabels, values: values,
                                     xLabel: steps ? "training step" : "checkpoint", valueLabel: "relative change")
    }
}
