import CKernels
import Kernels
import Testing

/// The 256-value activation blocks of the K-quants (`sy_block_q8k`), checked against their definition, and the
/// K-quant products over them: exact integer sums, so every level gives the same bits.
@Suite struct ActivationBlockTests {
    /// d = amax/127, q = round-to-nearest-even(x·127/amax), bsums the sums of each 16 and 32 values — at every level,
    /// byte for byte; a zero block quantizes to zeros.
    @Test func q8kBlocksFollowTheirDefinitionAtEveryLevel() {
        var g = Values(state: 5)
        let n = 768, rows = 3
        var x = g.array(n * rows, scale: 3)
        for i in 256..<512 { x[i] = 0 }   // row 0, block 1: all zero
        var levels: [[sy_block_q8k]] = []
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var blocks = [sy_block_q8k](repeating: sy_block_q8k(), count: n / 256 * rows)
            sy_quantize_rows_q8k_at(Int32(level.rawValue), x, &blocks, Int64(n), Int64(rows))
            levels.append(blocks)
        }
        for (b, block) in levels[0].enumerated() {
            let values = Array(x[(b * 256)..<((b + 1) * 256)])
            let amax = values.map(abs).max() ?? 0
            #expect(block.d == amax / 127, "block \(b)")
            let qs = withUnsafeBytes(of: block.qs) { Array($0.bindMemory(to: Int8.self)) }
            let id: Float = amax == 0 ? 0 : 127 / amax
            for i in 0..<256 { #expect(qs[i] == Int8((values[i] * id).rounded(.toNearestOrEven)), "block \(b) value \(i)") }
            let s16 = withUnsafeBytes(of: block.bsums16) { Array($0.bindMemory(to: Int16.self)) }
            let s32 = withUnsafeBytes(of: block.bsums32) { Array($0.bindMemory(to: Int16.self)) }
            for j in 0..<16 { #expect(Int(s16[j]) == qs[(16 * j)..<(16 * j + 16)].reduce(0) { $0 + Int($1) }) }
            for j in 0..<8 { #expect(Int(s32[j]) == qs[(32 * j)..<(32 * j + 32)].reduce(0) { $0 + Int($1) }) }
        }
        #expect(levels[0][1].d == 0)
        for other in levels.dropFirst() {
            for b in 0..<other.count {
                #expect(withUnsafeBytes(of: other[b]) { Array($0) } == withUnsafeBytes(of: levels[0][b]) { Array($0) }, "block \(b)")
            }
        }
    }

    /// K-quant products over q8k activations are the same float at every level, and within the bound the
    /// activations' rounding allows of the product with the dequantized weights in double precision: each activation
    /// is off by at most d/2 = amax/254 of its 256-value block (plus float rounding: 1e-5 of Σ|w·x|).
    @Test(arguments: [WeightType.q4_K, .q5_K, .q6_K])
    func kQuantProductsAreExactOverTheirActivations(type: WeightType) {
        var g = Values(state: 17)
        let rows = 21, cols = 1024, batch = 9
        let wbytes = (0..<rows).flatMap { _ in Quantize.encode(g.array(cols), as: type) }
        let x = g.array(batch * cols, scale: 2)
        let scratch = QuantizedScratch(maxColumns: cols, maxRows: batch)
        let pool = ThreadPool(threadCount: 2)
        var results: [[Float]] = []
        wbytes.withUnsafeBytes { raw in
            let w = WeightMatrix(type: type, rows: rows, columns: cols, base: raw.baseAddress!)
            for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
                var out = [Float](repeating: 0, count: batch * rows)
                x.withUnsafeBufferPointer { xp in
                    let a = Ops.prepare(xp.baseAddress!, rows: batch, columns: cols, for: type, scratch: scratch, level: level)
                    out.withUnsafeMutableBufferPointer { Ops.matmul(w, a, into: $0.baseAddress!, pool: pool, level: level) }
                }
                results.append(out)
            }
            var row = [Float](repeating: 0, count: cols)
            for r in 0..<rows {
                row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
                for c in 0..<batch {
                    var exact: Double = 0, bound: Double = 0, magnitude: Double = 0
                    for b in 0..<(cols / 256) {
                        let span = (c * cols + b * 256)..<(c * cols + (b + 1) * 256)
                        let half = Double(x[span].map(abs).max() ?? 0) / 254
                        for i in 0..<256 {
                            exact += Double(row[b * 256 + i]) * Double(x[span.lowerBound + i])
                            magnitude += abs(Double(row[b * 256 + i]) * Double(x[span.lowerBound + i]))
                            bound += abs(Double(row[b * 256 + i])) * half
                        }
                    }
                    let got = Double(results[0][c * rows + r])
                    #expect(abs(got - exact) <= bound + 1e-5 * magnitude, "\(type) r\(r) c\(c): \(got) vs \(exact) (bound \(bound))")
                }
            }
        }
        for other in results.dropFirst() { #expect(other == results[0]) }
    }

    @Test func formatsReadTheActivationsTheirKernelsWant() {
        for type in [WeightType.q4_K, .q5_K, .q6_K] { #expect(type.activationFormat == .q8k) }
        for type in [WeightType.q4_0, .q4_1, .q5_0, .q8_0] { #expect(type.activationFormat == .q8a) }
        for type in [WeightType.f32, .f16, .bf16] { #expect(type.activationFormat == .f32) }
    }
}
