import Kernels

/// Reference quantizers for Q5_0, the K-quants and BF16, written plainly (GGUF's block layouts; simple min/max scale
/// choices rather than ggml's error search: tests need valid, realistic blocks, not the best ones).
extension Quantize {
    /// Round to nearest even, as ggml converts f32 to bf16.
    static func bf16(_ x: Float) -> [UInt8] {
        let b = x.bitPattern
        let r = (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16
        return [UInt8(r & 0xFF), UInt8(r >> 8)]
    }

    /// The value `f16(x)` stores.
    static func rounded16(_ x: Float) -> Float { Ops.f16ToF32(Ops.f32ToF16(x)) }

    static func q5_0(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let maxv = v.max(by: { abs($0) < abs($1) }) ?? 0
            let d = maxv / -16, id = d == 0 ? 0 : 1 / d
            let q = v.map { UInt8(min(31, max(0, Int(($0 * id + 16.5).rounded(.down))))) }
            var qh: UInt32 = 0
            for i in 0..<32 where q[i] & 0x10 != 0 { qh |= 1 << UInt32(i) }
            out += f16(d)
            out += [UInt8(qh & 0xFF), UInt8((qh >> 8) & 0xFF), UInt8((qh >> 16) & 0xFF), UInt8(qh >> 24)]
            out += (0..<16).map { q[$0] & 0x0F | (q[$0 + 16] & 0x0F) << 4 }
        }
        return out
    }

    /// Eight 6-bit scales and eight 6-bit mins in ggml's 12 bytes.
    static func packScalesK4(_ ls: [Int], _ lm: [Int]) -> [UInt8] {
        var s = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            if j < 4 {
                s[j] = UInt8(ls[j])
                s[j + 4] = UInt8(lm[j])
            } else {
                s[j + 4] = UInt8((ls[j] & 0xF) | (lm[j] & 0xF) << 4)
                s[j - 4] |= UInt8(ls[j] >> 4) << 6
                s[j] |= UInt8(lm[j] >> 4) << 6
            }
        }
        return s
    }

    /// One 256-value super-block of Q4_K (nmax 15) or Q5_K (nmax 31): the d and dmin bytes, the packed scales and
    /// the levels 0...nmax of the 256 values (value ≈ d·ls_j·level − dmin·lm_j in sub-block j).
    static func k4Levels(_ v: ArraySlice<Float>, nmax: Int) -> (header: [UInt8], levels: [Int]) {
        let v = Array(v)
        var scales: [Float] = [], mins: [Float] = []
        for j in 0..<8 {
            let s = v[(32 * j)..<(32 * j + 32)]
            let lo = min(s.min() ?? 0, 0)
            scales.append(((s.max() ?? 0) - lo) / Float(nmax))
            mins.append(-lo)
        }
        let maxScale = scales.max() ?? 0, maxMin = mins.max() ?? 0
        let iscale: Float = maxScale > 0 ? 63 / maxScale : 0, imin: Float = maxMin > 0 ? 63 / maxMin : 0
        let ls = scales.map { min(63, Int(($0 * iscale).rounded())) }
        let lm = mins.map { min(63, Int(($0 * imin).rounded())) }
        let d = rounded16(maxScale / 63), dmin = rounded16(maxMin / 63)
        var levels = [Int](repeating: 0, count: 256)
        for j in 0..<8 {
            let step = d * Float(ls[j]), offset = dmin * Float(lm[j])
            guard step != 0 else { continue }
            for l in 0..<32 { levels[32 * j + l] = min(nmax, max(0, Int(((v[32 * j + l] + offset) / step).rounded()))) }
        }
        return (f16(maxScale / 63) + f16(maxMin / 63) + packScalesK4(ls, lm), levels)
    }

    static func q4_K(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 256) {
            let (header, q) = k4Levels(x[b..<(b + 256)], nmax: 15)
            out += header
            for j in stride(from: 0, to: 256, by: 64) {
                out += (0..<32).map { UInt8(q[j + $0] | q[j + $0 + 32] << 4) }
            }
        }
        return out
    }

    static func q5_K(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 256) {
            let (header, q) = k4Levels(x[b..<(b + 256)], nmax: 31)
            var qh = [UInt8](repeating: 0, count: 32), ql: [UInt8] = []
            for (chunk, n) in stride(from: 0, to: 256, by: 64).enumerated() {
                for j in 0..<32 {
                    // bit 2·chunk of qh[j]: fifth bit of sub-block 2·chunk; bit 2·chunk + 1: of sub-block 2·chunk + 1
                    qh[j] |= UInt8(q[n + j] >> 4) << (2 * chunk) | UInt8(q[n + j + 32] >> 4) << (2 * chunk + 1)
                    ql.append(UInt8(q[n + j] & 0xF | (q[n + j + 32] & 0xF) << 4))
                }
            }
            out += header + qh + ql
        }
        return out
    }

    static func q6_K(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: x.count, by: 256) {
            let v = Array(x[b..<(b + 256)])
            // per 16 values: the scale that maps the largest magnitude to −32
            let scales: [Float] = (0..<16).map { k in (v[(16 * k)..<(16 * k + 16)].max(by: { abs($0) < abs($1) }) ?? 0) / -32 }
            let maxScale = scales.max(by: { abs($0) < abs($1) }) ?? 0
            let iscale: Float = maxScale != 0 ? -128 / maxScale : 0
            let sc = scales.map { min(127, max(-128, Int(($0 * iscale).rounded()))) }
            let dBytes = f16(iscale != 0 ? 1 / iscale : 0), d = rounded16(iscale != 0 ? 1 / iscale : 0)
            var q = [Int](repeating: 32, count: 256)
            for k in 0..<16 {
                let step = d * Float(sc[k])
                guard step != 0 else { continue }
                for l in 0..<16 { q[16 * k + l] = min(31, max(-32, Int((v[16 * k + l] / step).rounded()))) + 32 }
            }
            var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
            for half in 0..<2 {
                let j = 128 * half, o = 64 * half, h = 32 * half
                for l in 0..<32 {
                    let q1 = q[j + l], q2 = q[j + l + 32], q3 = q[j + l + 64], q4 = q[j + l + 96]
                    ql[o + l] = UInt8(q1 & 0xF | (q3 & 0xF) << 4)
                    ql[o + l + 32] = UInt8(q2 & 0xF | (q4 & 0xF) << 4)
                    qh[h + l] = UInt8(q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6)
                }
            }
            out += ql + qh + sc.map { UInt8(bitPattern: Int8($0)) } + dBytes
        }
        return out
    }
}
