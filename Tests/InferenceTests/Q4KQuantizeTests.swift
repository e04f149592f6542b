import Foundation
import GGUF
import Kernels
import TestSupport
import Testing

/// The engine's Q4_K quantizer (`--quantize q4_k`) against llama.cpp's `llama-quantize` on the same F16 weights
/// (`Tests/Fixtures/reference/q4k`, made by `tools/make_q4k_reference.py`).
@Suite struct Q4KQuantizeTests {
    /// Both follow ggml's reference quantizer; llama.cpp's build may fuse multiply-adds where ours does not, so a
    /// block can come out different where two candidate fits are within a rounding of each other. What must hold:
    /// almost every block identical, and our error against the exact input no larger than llama.cpp's own (the
    /// anchor's error is the bar; 0.1% is the room for those near-ties going either way).
    @Test func quantizesAsLlamaCppQuantizes() throws {
        let input = try GGUFFile(path: Reference.file("q4k/input.f16.gguf").path)
        let reference = try GGUFFile(path: Reference.file("q4k/q4_k.gguf").path)
        var blocks = 0, identical = 0
        var ours = 0.0, theirs = 0.0, signal = 0.0
        for t in input.tensors where t.dimensions.count == 2 {
            let columns = t.dimensions[0], rows = t.dimensions[1]
            let ref = try #require(reference.tensor(named: t.name))
            #expect(ref.type == .q4_K, "\(t.name)")
            let src = input.data(for: t), theirBytes = reference.data(for: ref)
            let rowBytes = columns / 256 * KQuantize.q4KBlockBytes
            #expect(theirBytes.count >= rows * rowBytes)
            var x = [Float](repeating: 0, count: columns), mine = [UInt8](repeating: 0, count: rowBytes)
            var a = [Float](repeating: 0, count: columns), b = [Float](repeating: 0, count: columns)
            for r in 0..<rows {
                for c in 0..<columns { x[c] = Ops.f16ToF32(src.loadUnaligned(fromByteOffset: 2 * (r * columns + c), as: UInt16.self)) }
                x.withUnsafeBufferPointer { xp in mine.withUnsafeMutableBytes { KQuantize.toQ4K(xp.baseAddress!, $0.baseAddress!, count: columns) } }
                let theirRow = UnsafeRawBufferPointer(rebasing: theirBytes[(r * rowBytes)..<((r + 1) * rowBytes)])
                for k in 0..<(columns / 256) {
                    blocks += 1
                    if mine[(k * 144)..<((k + 1) * 144)].elementsEqual(theirRow[(k * 144)..<((k + 1) * 144)]) { identical += 1 }
                }
                mine.withUnsafeBytes { WeightMatrix(type: .q4_K, rows: 1, columns: columns, base: $0.baseAddress!).dequantizeRow(0, into: &a) }
                WeightMatrix(type: .q4_K, rows: 1, columns: columns, base: theirRow.baseAddress!).dequantizeRow(0, into: &b)
                for c in 0..<columns {
                    ours += Double(a[c] - x[c]) * Double(a[c] - x[c])
                    theirs += Double(b[c] - x[c]) * Double(b[c] - x[c])
                    signal += Double(x[c]) * Double(x[c])
                }
            }
        }
        print("Q4_K: \(identical)/\(blocks) blocks identical to llama-quantize's; relative RMS error ours \((ours / signal).squareRoot()), llama.cpp \((theirs / signal).squareRoot())")
        #expect(blocks == 32 + 7 * 256)   // token_embd: 32 rows of one block; seven 256 × 256 matrices
        #expect(Double(identical) >= 0.99 * Double(blocks))
        #expect(ours <= theirs * 1.001)
    }
}
