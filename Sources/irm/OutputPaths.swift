import Foundation
import IRMKit

/// Checks and locks an output path before any work (`AtomicOutput.claim`), so that a path irm
/// cannot or may not write fails at once, not after the scoring; says which stale temporary files
/// of interrupted runs it removed. The caller releases the claim when it has written the output.
func claimOutput(_ path: String, as kind: AtomicOutput.Kind, label: String?, warn: (String) -> Void) throws -> OutputClaim {
    let claim = try AtomicOutput.claim(URL(fileURLWithPath: path), as: kind, label: label)
    for removed in claim.removedTemporaries {
        warn("removed \(removed), a temporary file of an irm run that was interrupted")
    }
    return claim
}
