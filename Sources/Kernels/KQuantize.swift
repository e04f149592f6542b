import CKernels

/// Weights quantized to Q4_K at conversion time, following ggml's reference quantizer (`quantize_row_q4_K_ref`):
/// per 32 values, a weighted least-squares search over 21 candidate scales for the 4-bit levels and a non-positive
/// minimum (`make_qkx2_quants`, weights `rms + |x|`); the eight scales and mins of a 256-value super-block stored as
/// 6-bit multiples of two half-precision factors, then the levels recomputed with the stored values. Not a hot loop:
/// it runs once per weight when a model folder is converted.
public enum KQuantize {
    /// Bytes of one Q4_K super-block (256 values): d, dmin (f16), 12 bytes of scales and mins, 128 of levels.
    public static let q4KBlockBytes = 144

    /// ggml's `nearest_int`: round half to even, for |x| ≤ 4194303 (beyond it clamped, and 0 for what is not a number,
    /// so bad weights give bad levels rather than a trap).
    @inlinable static func nearest(_ x: Float) -> Int32 {
        guard x.isFinite else { return 0 }
        return Int32(min(4_194_303, max(-4_194_303, x)).rounded(.toNearestOrEven))
    }

    /// `count` values (a multiple of 256) of `x` as Q4_K blocks into `y` (count / 256 · 144 bytes).
    public static func toQ4K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, count: Int) {
        var levels = [UInt8](repeating: 0, count: 256)
        var aux = [UInt8](repeating: 0, count: 32)
        var weights = [Float](repeating: 0, count: 32)
        var mins = [Float](repeating: 0, count: 8)
        var scales = [Float](repeating: 0, count: 8)
        for block in 0..<(count / 256) {
            let v = x + block * 256
            let out = y + block * q4KBlockBytes
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                var sumX2: Float = 0
                for l in 0..<32 { sumX2 += v[32 * j + l] * v[32 * j + l] }
                let av = (sumX2 / 32).squareRoot()
                for l in 0..<32 { weights[l] = av + abs(v[32 * j + l]) }
                (scales[j], mins[j]) = fit(v + 32 * j, weights: weights, levels: &levels, at: 32 * j, aux: &aux)
                maxScale = max(maxScale, scales[j])
                maxMin = max(maxMin, mins[j])
            }
            let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
            var packed = [UInt8](repeating: 0, count: 12)
            for j in 0..<8 {
                let ls = UInt8(min(63, max(0, nearest(inverseScale * scales[j]))))
                let lm = UInt8(min(63, max(0, nearest(inverseMin * mins[j]))))
                if j < 4 {
                    packed[j] = ls
                    packed[j + 4] = lm
                } else {
                    packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                    packed[j - 4] |= (ls >> 4) << 6
                    packed[j] |= (lm >> 4) << 6
                }
            }
            let d = Ops.f32ToF16(maxScale / 63), dmin = Ops.f32ToF16(maxMin / 63)
            out.storeBytes(of: d, toByteOffset: 0, as: UInt16.self)
            out.storeBytes(of: dmin, toByteOffset: 2, as: UInt16.self)
            for i in 0..<12 { out.storeBytes(of: packed[i], toByteOffset: 4 + i, as: UInt8.self) }
            let df = Ops.f16ToF32(d), dminf = Ops.f16ToF32(dmin)
            for j in 0..<8 {
                let (sc, m) = scaleMin(j, packed)
                let dj = df * Float(sc)
                if dj == 0 { continue }
                let dm = dminf * Float(m)
                for i in 0..<32 {
                    levels[32 * j + i] = UInt8(min(15, max(0, nearest((v[32 * j + i] + dm) / dj))))
                }
            }
            for (g, j) in stride(from: 0, to: 256, by: 64).enumerated() {
                for l in 0..<32 {
                    out.storeBytes(of: levels[j + l] | (levels[j + l + 32] << 4), toByteOffset: 16 + 32 * g + l, as: UInt8.self)
                }
            }
        }
    }

    /// Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml's `get_scale_min_k4`).
    static func scaleMin(_ j: Int, _ q: [UInt8]) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// The scale and (negated) minimum of 32 values with levels 0…15 into `levels[at…]`: the plain min/max fit, then
    /// 21 rescalings around it, each refitted by weighted least squares and kept when its weighted error is lower
    /// (`make_qkx2_quants(32, 15, x, w, L, &min, Laux, -1, 0.1, 20, false)`).
    static func fit(_ x: UnsafePointer<Float>, weights w: [Float], levels: inout [UInt8], at offset: Int,
                    aux: inout [UInt8]) -> (scale: Float, min: Float) {
        let n = 32, nmax: Float = 15
        var lo = x[0], hi = x[0]
        var sumW = w[0], sumX = w[0] * x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            sumW += w[i]
            sumX += w[i] * x[i]
        }
        if lo > 0 { lo = 0 }
        if hi == lo {
            for i in 0..<n { levels[offset + i] = 0 }
            return (0, -lo)
        }
        var iscale = nmax / (hi - lo)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = UInt8(min(15, max(0, nearest(iscale * (x[i] - lo)))))
            levels[offset + i] = l
            let diff = scale * Float(l) + lo - x[i]
            bestError += w[i] * (diff * diff)
        }
        for step in 0...20 {
            iscale = (-1 + 0.1 * Float(step) + nmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = UInt8(min(15, max(0, nearest(iscale * (x[i] - lo)))))
                aux[i] = l
                let lf = Float(l)
                sumL += w[i] * lf
                sumL2 += w[i] * lf * lf
                sumXL += w[i] * lf * x[i]
            }
            let det = sumW * sumL2 - sumL * sumL
            guard det > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / det
            var thisMin = (sumL2 * sumX - sumL * sumXL) / det
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                let diff = thisScale * Float(aux[i]) + thisMin - x[i]
                error += w[i] * (diff * diff)
            }
            if error < bestError {
                for i in 0..<n { levels[offset + i] = aux[i] }
                bestError = error
                scale = thisScale
                lo = thisMin
            }
        }
        return (scale, -lo)
    }
}
