import CKernels
import Kernels
import Testing

/// Deterministic values in [-1, 1).
struct Values {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// Reference quantizers (the block layouts of GGUF), written plainly in Swift.
enum Quantize {
    static func f16(_ x: Float) -> [UInt8] { let h = Ops.f32ToF16(x); return [UInt8(h & 0xFF), UInt8(h >> 8)] }

    static func q8_0(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = x[b..<(b + 32)]
            let amax = v.map(abs).max() ?? 0
            let d = amax / 127, id = d == 0 ? 0 : 1 / d
            out += f16(d)
            out += v.map { UInt8(bitPattern: Int8(($0 * id).rounded())) }
        }
        return out
    }

    static func q4_0(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let maxv = v.max(by: { abs($0) < abs($1) }) ?? 0
            let d = maxv / -8, id = d == 0 ? 0 : 1 / d
            out += f16(d)
            for i in 0..<16 {
                let lo = UInt8(min(15, max(0, Int((v[i] * id + 8.5).rounded(.down)))))
                let hi = UInt8(min(15, max(0, Int((v[i + 16] * id + 8.5).rounded(.down)))))
                out.append(lo | hi << 4)
            }
        }
        return out
    }

    static func q4_1(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let mn = v.min() ?? 0, mx = v.max() ?? 0
            let d = (mx - mn) / 15, id = d == 0 ? 0 : 1 / d
            out += f16(d) + f16(mn)
            for i in 0..<16 {
                let lo = UInt8(min(15, max(0, Int(((v[i] - mn) * id + 0.5).rounded(.down)))))
                let hi = UInt8(min(15, max(0, Int(((v[i + 16] - mn) * id + 0.5).rounded(.down)))))
                out.append(lo | hi << 4)
            }
        }
        return out
    }

    static func encode(_ x: [Float], as type: WeightType) -> [UInt8] {
        switch type {
        case .f32: x.withUnsafeBytes { Array($0) }
        case .f16: x.flatMap { f16($0) }
        case .q4_0: q4_0(x)
        case .q4_1: q4_1(x)
        case .q8_0: q8_0(x)
        case .q5_0: q5_0(x)
        case .q4_K: q4_K(x)
        case .q5_K: q5_K(x)
        case .q6_K: q6_K(x)
        case .bf16: x.flatMap { bf16($0) }
        }
    }
}

/// Every level is exercised through explicit `level:` arguments: nothing here changes the process-wide level.
@Suite struct KernelTests {
    @Test func halfPrecisionRoundTrip() {
        for v: Float in [0, 1, -1, 0.5, 65504, -2.5, 1e-5, 6.1e-5, 3.14159] {
            let back = Ops.f16ToF32(Ops.f32ToF16(v))
            #expect(abs(back - v) <= abs(v) * 1e-3 + 1e-7, "\(v) → \(back)")
        }
        #expect(Ops.f16ToF32(0x7C00) == .infinity)
        #expect(Ops.f16ToF32(0x3C00) == 1)
    }

    @Test(arguments: WeightType.allCases)
    func dequantizeIsClose(type: WeightType) {
        var g = Values(state: 7)
        let x = g.array(256)
        let bytes = Quantize.encode(x, as: type)
        var out = [Float](repeating: 0, count: 256)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(type: type, rows: 1, columns: 256, base: raw.baseAddress!)
            out.withUnsafeMutableBufferPointer { w.dequantizeRow(0, into: $0.baseAddress!) }
        }
        let tolerance: Float = switch type {
        case .f32: 0
        case .f16: 1e-3
        case .bf16: 4e-3
        case .q8_0: 0.01
        case .q6_K: 0.04
        case .q5_0, .q5_K: 0.08
        default: 0.15
        }
        for i in 0..<256 { #expect(abs(out[i] - x[i]) <= tolerance, "\(type) element \(i): \(out[i]) vs \(x[i])") }
    }

    /// Every SIMD level computes the same products as the dequantized reference, for decode (1 column) and
    /// prompt batches (several columns, including a remainder that is not a multiple of 4).
    @Test(arguments: WeightType.allCases)
    func matmulMatchesReferenceAtEveryLevel(type: WeightType) {
        var g = Values(state: 11)
        let rows = 37, cols = type.blockSize == 256 ? 512 : 320, batch = 7
        let wf = g.array(rows * cols)
        let wbytes = (0..<rows).flatMap { r in Quantize.encode(Array(wf[(r * cols)..<((r + 1) * cols)]), as: type) }
        let x = g.array(batch * cols, scale: 2)
        let scratch = QuantizedScratch(maxColumns: cols, maxRows: batch)
        let pool = ThreadPool(threadCount: 2)
        var results: [[Float]] = []
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var out = [Float](repeating: 0, count: batch * rows)
            wbytes.withUnsafeBytes { raw in
                let w = WeightMatrix(type: type, rows: rows, columns: cols, base: raw.baseAddress!)
                x.withUnsafeBufferPointer { xp in
                    let a = Ops.prepare(xp.baseAddress!, rows: batch, columns: cols, for: type, scratch: scratch, level: level)
                    out.withUnsafeMutableBufferPointer { Ops.matmul(w, a, into: $0.baseAddress!, pool: pool, level: level) }
                }
                // reference: dequantized weights · float activations
                var row = [Float](repeating: 0, count: cols)
                for r in 0..<rows {
                    row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
                    for c in 0..<batch {
                        var ref: Float = 0
                        for i in 0..<cols { ref += row[i] * x[c * cols + i] }
                        let got = out[c * rows + r]
                        let tol: Float = type.wantsQuantizedActivations ? 0.02 * Float(cols).squareRoot() : 1e-3
                        #expect(abs(got - ref) <= tol, "\(type) \(level) r\(r) c\(c): \(got) vs \(ref)")
                    }
                }
            }
            results.append(out)
        }
        // SIMD levels agree with the generic path to float rounding
        for other in results.dropFirst() {
            for i in 0..<other.count { #expect(abs(other[i] - results[0][i]) <= 1e-3 * max(1, abs(results[0][i]))) }
        }
    }

    /// A row's product is bit-identical whether it is computed alone or inside a batch (any batch size from 1 to 9,
    /// any position in it), and whichever kernel (eight rows or one) computes it: batched greedy decoding then equals
    /// unbatched greedy decoding. 1...9 columns take every column count of the 8-column tiles and a second tile.
    @Test(arguments: [WeightType.q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q5_K, .q6_K, .bf16, .f16, .f32])
    func productsDoNotDependOnBatchComposition(type: WeightType) {
        var g = Values(state: 21)
        let rows = 19, cols = type.blockSize == 256 ? 768 : 576, total = 12
        let wbytes = (0..<rows).flatMap { _ in Quantize.encode(g.array(cols), as: type) }
        let x = g.array(total * cols, scale: 3)
        let scratch = QuantizedScratch(maxColumns: cols, maxRows: total)
        let pool = ThreadPool(threadCount: 2)
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            wbytes.withUnsafeBytes { raw in
                let w = WeightMatrix(type: type, rows: rows, columns: cols, base: raw.baseAddress!)
                /// out[c * rows + r] for the activation rows first..<first + count, multiplied as one batch.
                func product(_ first: Int, _ count: Int) -> [Float] {
                    var out = [Float](repeating: 0, count: count * rows)
                    x.withUnsafeBufferPointer { xp in
                        let a = Ops.prepare(xp.baseAddress! + first * cols, rows: count, columns: cols, for: type, scratch: scratch, level: level)
                        out.withUnsafeMutableBufferPointer { Ops.matmul(w, a, into: $0.baseAddress!, pool: pool, level: level) }
                    }
                    return out
                }
                let alone = (0..<total).map { product($0, 1) }
                // each row on its own (the one-row kernel) equals its lane of the eight-row kernel
                for c in [0, total - 1] {
                    var single = [Float](repeating: 0, count: rows)
                    x.withUnsafeBufferPointer { xp in
                        let a = Ops.prepare(xp.baseAddress! + c * cols, rows: 1, columns: cols, for: type, scratch: scratch, level: level)
                        single.withUnsafeMutableBufferPointer { o in
                            for r in 0..<rows { Ops.matmulRows(w, a, range: r..<(r + 1), into: o.baseAddress!, ldd: rows, level: level) }
                        }
                    }
                    #expect(single == alone[c], "\(type) \(level): column \(c) row by row")
                }
                for count in 1...9 {
                    for first in Set([0, (total - count) / 2, total - count]) {
                        let batch = product(first, count)
                        for c in 0..<count {
                            #expect(Array(batch[(c * rows)..<((c + 1) * rows)]) == alone[first + c],
                                    "\(type) \(level): column \(first + c) in a batch of \(count) from \(first)")
                        }
                    }
                }
            }
        }
    }

    @Test func attentionMatchesReference() {
        var g = Values(state: 3)
        let hd = 64, n = 19, stride = 192
        let q = g.array(hd)
        let kh = g.array(n * stride).map(Ops.f32ToF16), vh = g.array(n * stride).map(Ops.f32ToF16)
        let k = kh.map(Ops.f16ToF32), v = vh.map(Ops.f16ToF32)
        var scores = (0..<n).map { j in (0..<hd).reduce(Float(0)) { $0 + q[$1] * k[j * stride + $1] } * 0.125 }
        let m = scores.max()!
        scores = scores.map { exp($0 - m) }
        let s = scores.reduce(0, +)
        var expected = [Float](repeating: 0, count: hd)
        for j in 0..<n { for d in 0..<hd { expected[d] += scores[j] / s * v[j * stride + d] } }
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var out = [Float](repeating: 0, count: hd)
            var scratch = [Float](repeating: 0, count: n)
            Ops.attention(q: q, k: kh, v: vh, count: n, headDim: hd, stride: stride, scale: 0.125, scratch: &scratch, out: &out, level: level)
            for d in 0..<hd { #expect(abs(out[d] - expected[d]) < 1e-4, "\(level) d\(d)") }
        }
    }

    @Test func attentionOverEightBitCacheIsClose() {
        var g = Values(state: 4)
        let hd = 64, n = 23, kvDim = 192
        let rowBytes = kvDim / 32 * 34
        let q = g.array(hd), kf = g.array(n * kvDim), vf = g.array(n * kvDim)
        var k = [UInt8](repeating: 0, count: n * rowBytes), v = k
        for j in 0..<n {
            kf.withUnsafeBufferPointer { src in k.withUnsafeMutableBytes { Ops.toQ8(src.baseAddress! + j * kvDim, $0.baseAddress! + j * rowBytes, count: kvDim) } }
            vf.withUnsafeBufferPointer { src in v.withUnsafeMutableBytes { Ops.toQ8(src.baseAddress! + j * kvDim, $0.baseAddress! + j * rowBytes, count: kvDim) } }
        }
        // head 1 of 3: its keys and values start at element 64 of each row (2 blocks in)
        var scores = (0..<n).map { j in (0..<hd).reduce(Float(0)) { $0 + q[$1] * kf[j * kvDim + hd + $1] } * 0.125 }
        let m = scores.max()!
        scores = scores.map { exp($0 - m) }
        let s = scores.reduce(0, +)
        var expected = [Float](repeating: 0, count: hd)
        for j in 0..<n { for d in 0..<hd { expected[d] += scores[j] / s * vf[j * kvDim + hd + d] } }
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var out = [Float](repeating: 0, count: hd), scratch = [Float](repeating: 0, count: n)
            k.withUnsafeBytes { kp in v.withUnsafeBytes { vp in
                Ops.attentionQ8(q: q, k: kp.baseAddress! + 2 * 34, v: vp.baseAddress! + 2 * 34, count: n, headDim: hd, strideBytes: rowBytes,
                                scale: 0.125, scratch: &scratch, out: &out, level: level)
            } }
            for d in 0..<hd { #expect(abs(out[d] - expected[d]) < 0.02, "\(level) d\(d): \(out[d]) vs \(expected[d])") }
        }
    }

    @Test func geluMulMatchesReference() {
        var g = Values(state: 9)
        let a = g.array(100, scale: 12), b = g.array(100)
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var x = a
            Ops.geluMul(&x, b, count: 100, level: level)
            for i in 0..<100 {
                let v = Double(a[i])
                let ref = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * Double(b[i])
                #expect(abs(Double(x[i]) - ref) <= 1e-5 * max(1, abs(ref)), "\(level) x=\(a[i])")
            }
        }
    }

    /// The exact GELU against erf in double precision: the SIMD levels' erf (Numerical Recipes' erfc, fractional
    /// error below 1.2e-7) times ½|x|, plus float rounding of the few operations around it.
    @Test func biasGELUMatchesErfReference() {
        var g = Values(state: 13)
        let a = g.array(203, scale: 8), bias = g.array(203)
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var x = a
            Ops.biasGELU(&x, bias, count: 203, level: level)
            for i in 0..<203 {
                let v = Double(a[i] + bias[i])
                let ref = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                #expect(abs(Double(x[i]) - ref) <= 4e-7 * max(1, abs(v)), "\(level) x=\(v): \(x[i]) vs \(ref)")
            }
        }
    }

    @Test func siluMulMatchesReference() {
        var g = Values(state: 5)
        let a = g.array(100, scale: 10), b = g.array(100)
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var x = a
            Ops.siluMul(&x, b, count: 100, level: level)
            for i in 0..<100 {
                let ref = a[i] / (1 + exp(-a[i])) * b[i]
                #expect(abs(x[i] - ref) <= 1e-5 * max(1, abs(ref)))
            }
        }
    }

    @Test func ropeRotatesPairsAndKeepsNorm() {
        var table = [Float](repeating: 0, count: 4)
        Ops.ropeTable(position: 3, thetaScale: 0.1, pairs: 2, into: &table)
        var x: [Float] = [1, 0, 0, 1]
        Ops.ropeNormal(&x, heads: 1, headDim: 4, rotatedDims: 4, table: table)
        #expect(abs(x[0] - cos(3)) < 1e-6 && abs(x[1] - sin(3)) < 1e-6)
        #expect(abs(x[2] - -sin(0.3)) < 1e-6 && abs(x[3] - cos(0.3)) < 1e-6)
        var y: [Float] = [1, 0, 0, 1]
        Ops.ropeNeox(&y, heads: 1, headDim: 4, rotatedDims: 4, table: table)
        #expect(abs(y[0] - cos(3)) < 1e-6 && abs(y[2] - sin(3)) < 1e-6)
    }

    /// Frequency factors (Llama 3.1's `rope_freqs`) divide each pair's angle: pair i turns by pos·scale^i / f_i.
    @Test func ropeFactorsDivideTheAngles() {
        var table = [Float](repeating: 0, count: 6)
        let factors: [Float] = [1, 4, 8]
        Ops.ropeTable(position: 5, thetaScale: 0.5, pairs: 3, factors: factors, into: &table)
        for i in 0..<3 {
            let angle = 5 * pow(0.5, Double(i)) / Double(factors[i])
            #expect(abs(Double(table[2 * i]) - cos(angle)) < 1e-6 && abs(Double(table[2 * i + 1]) - sin(angle)) < 1e-6, "pair \(i)")
        }
    }

    @Test func rmsNorm() {
        let x: [Float] = [3, 4, 0, 0]
        let w: [Float] = [1, 1, 2, 1]
        var out = [Float](repeating: 0, count: 4)
        Ops.rmsNorm(x, weight: w, eps: 0, n: 4, rows: 1, into: &out)
        #expect(abs(out[0] - 3 / 2.5) < 1e-6 && abs(out[1] - 4 / 2.5) < 1e-6)
    }

    @Test func threadPoolRunsEveryIndexOnce() {
        let pool = ThreadPool(threadCount: 3)
        for _ in 0..<200 {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
            hits.initialize(repeating: 0, count: 1000)
            pool.run { t, n in for i in ThreadPool.split(1000, thread: t, of: n, granularity: 16) { hits[i] += 1 } }
            #expect((0..<1000).allSatisfy { hits[$0] == 1 })
            hits.deallocate()
        }
    }

    @Test func splitCoversRange() {
        for count in [0, 1, 5, 16, 17, 1000] {
            for threads in 1...4 {
                let parts = (0..<threads).map { ThreadPool.split(count, thread: $0, of: threads, granularity: 16) }
                #expect(parts.map(\.count).reduce(0, +) == count)
                for i in 1..<parts.count { #expect(parts[i].lowerBound == parts[i - 1].upperBound) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
