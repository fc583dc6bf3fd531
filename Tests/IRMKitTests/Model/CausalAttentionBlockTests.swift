import Foundation
import XCTest
@testable import IRMKit

/// The attention kernel scores queries in blocks of `CausalAttention.queriesPerBlock` positions.
/// These tests check that the blocking changes no bit: the kernel equals the plain one-query
/// version of its arithmetic exactly, with ragged causal and sliding-window edges inside a block,
/// and a token's output does not depend on which queries share its block.
extension CausalAttentionTests {
    /// Geometries that exercise: blocks with a common key range and ragged edges (windows of 4 and
    /// more), windows narrower than a block (1 to 3), grouped heads, head widths that are and are
    /// not multiples of 16, short last blocks, and Gemma 2's soft cap.
    static let blockCases: [(heads: Int, kvHeads: Int, headDim: Int, window: Int?, softCap: Float?)] = [
        (4, 4, 8, nil, nil), (4, 2, 16, nil, nil), (2, 1, 64, nil, nil), (2, 2, 64, 5, nil), (3, 1, 40, 4, 3),
        (2, 2, 3, 1, nil), (2, 1, 12, 2, 4), (4, 2, 16, 3, nil), (2, 2, 128, 9, nil), (2, 1, 80, nil, 5),
        (1, 1, 32, 33, nil),
    ]

    func testEqualsThePlainVersionOfItsArithmeticBitForBit() throws {
        for c in Self.blockCases {
            var g = AttentionGeometry(headCount: c.heads, kvHeadCount: c.kvHeads, headDim: c.headDim, scale: 0.45, window: c.window)
            g.softCap = c.softCap
            let cfg = try config(heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
            for length in [1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 46] {
                let qkv = random.floats(length * g.qkvWidth, scale: 2)
                let out = try attend(qkv, geometry: g, config: cfg, segments: [(length, nil, false)]).output
                let (q, k, v) = split(qkv, rows: length, g: g)
                let expected = ReferenceKernels.attentionInKernelOrder(
                    q: q, k: k, v: v, length: length, headCount: c.heads, kvHeadCount: c.kvHeads, headDim: c.headDim,
                    scale: 0.45, window: c.window, softCap: c.softCap)
                let differing = zip(out, expected).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(c), length \(length): outputs that differ in some bit")
            }
        }
    }

    /// The same tokens under every alignment of the query blocks: the whole sequence, every
    /// shorter sequence (a different short last block), and a continuation of every cached prefix
    /// length from 1 to 9 (the continuation's blocks start at the split), alone and packed.
    func testOutputsDoNotDependOnWhichQueriesShareABlock() throws {
        for c in Self.blockCases where [64, 40, 12].contains(c.headDim) {
            var g = AttentionGeometry(headCount: c.heads, kvHeadCount: c.kvHeads, headDim: c.headDim, scale: 0.45, window: c.window)
            g.softCap = c.softCap
            let cfg = try config(heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
            let length = 23
            let qkv = random.floats(length * g.qkvWidth, scale: 2)
            let alone = try attend(qkv, geometry: g, config: cfg, segments: [(length, nil, false)]).output
            for shorter in 1..<length {
                let out = try attend(Array(qkv[..<(shorter * g.qkvWidth)]), geometry: g, config: cfg,
                                     segments: [(shorter, nil, false)]).output
                XCTAssertEqual(out, Array(alone[..<(shorter * g.qDim)]), "\(c): the first \(shorter) tokens alone")
            }
            for split in 1...9 {
                let prefixRun = try attend(Array(qkv[..<(split * g.qkvWidth)]), geometry: g, config: cfg, segments: [(split, nil, true)])
                let cache = try XCTUnwrap(prefixRun.batch.recordedCaches[0])
                let rest = Array(qkv[(split * g.qkvWidth)...])
                let continued = try attend(rest, geometry: g, config: cfg, segments: [(length - split, cache, false)]).output
                XCTAssertEqual(prefixRun.output + continued, alone, "\(c): continuing a cached prefix of \(split)")
                let other = random.floats(3 * g.qkvWidth, scale: 2)
                let packed = try attend(other + rest, geometry: g, config: cfg,
                                        segments: [(3, nil, false), (length - split, cache, false)]).output
                XCTAssertEqual(Array(packed[(3 * g.qDim)...]), continued, "\(c): the continuation packed after another sequence")
            }
        }
    }
}
