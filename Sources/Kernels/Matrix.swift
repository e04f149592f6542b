import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Weight formats the kernels can multiply with. Raw values are ggml's type ids, block layouts GGUF's.
public enum WeightType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// Elements per block: 1 for the float formats, 256 for the K-quants' super-blocks, else 32.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q8_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q8_0: 34
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }
    /// The name ggml prints ("Q4_K", "BF16", …).
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        }
    }
    /// Every supported format by name, for error messages ("F32, F16, …").
    public static var supportedNames: String { allCases.map(\.name).joined(separator: ", ") }
    /// How activations are given to this format's kernels: as floats, or quantized to 8 bits in blocks of 32 (q8a)
    /// or of 256 (q8k, the K-quants).
    public enum ActivationFormat: Sendable, Equatable { case f32, q8a, q8k }
    public var activationFormat: ActivationFormat {
        switch sy_type_activation(Int32(rawValue)) {
        case Int32(SY_ACT_Q8A): .q8a
        case Int32(SY_ACT_Q8K): .q8k
        default: .f32
        }
    }
    /// Whether activations must be quantized to 8-bit blocks before a multiply (otherwise they stay f32).
    public var wantsQuantizedActivations: Bool { activationFormat != .f32 }
    public func rowBytes(_ columns: Int) -> Int { columns / blockSize * blockBytes }
}

/// A row-major weight matrix inside a mapped file: `rows` rows of `columns` elements (ggml's ne[1] × ne[0]).
public struct WeightMatrix: @unchecked Sendable {
    public let type: WeightType
    public let rows: Int
    public let columns: Int
    public let base: UnsafeRawPointer
    public var rowBytes: Int { type.rowBytes(columns) }

    public init(type: WeightType, rows: Int, columns: Int, base: UnsafeRawPointer) {
        self.type = type; self.rows = rows; self.columns = columns; self.base = base
    }

    /// Dequantizes row `r` into `out` (`columns` floats).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        _ = sy_dequantize_row(Int32(type.rawValue), base + r * rowBytes, out, Int64(columns))
    }

    /// Rows `start ..< start + count` as a matrix of their own (the rows are stored one after another, so this is a
    /// view: Phi-3's fused query-key-value and gate-up matrices are used as their parts).
    public func rows(_ start: Int, _ count: Int) -> WeightMatrix {
        precondition(start >= 0 && count >= 0 && start + count <= rows, "row range outside the matrix")
        return WeightMatrix(type: type, rows: count, columns: columns, base: base + start * rowBytes)
    }
}

/// The CPU kernels in use.
public enum CPUKernels {
    public enum Level: Int, Sendable, CustomStringConvertible {
        case generic = 0, avx2 = 1, avx512vnni = 2
        public var description: String { switch self { case .generic: "generic"; case .avx2: "AVX2"; case .avx512vnni: "AVX-512 VNNI" } }
    }
    public static var detected: Level { Level(rawValue: Int(sy_detected_level())) ?? .generic }
    public static var active: Level { Level(rawValue: Int(sy_active_level())) ?? .generic }
    /// Applies `SWITCHYARD_KERNELS` (generic, avx2 or avx512vnni), once, before any model runs: a lower level than the
    /// CPU offers, for debugging or comparing.
    public static let environmentOverride: Level? = {
        guard let raw = getenv("SWITCHYARD_KERNELS") else { return nil }
        let name = String(cString: raw).lowercased()
        let level: Level? = switch name {
        case "generic": .generic
        case "avx2": .avx2
        case "avx512vnni", "avx512", "vnni": .avx512vnni
        default: nil
        }
        return level.map(select)
    }()

    /// Chooses the level for the whole process (at start-up, e.g. from SWITCHYARD_KERNELS), clamped to the detected one.
    /// Tests compare levels by passing `level:` to `Ops` instead.
    @discardableResult
    public static func select(_ level: Level) -> Level { Level(rawValue: Int(sy_set_level(Int32(level.rawValue)))) ?? .generic }
}

/// Activations prepared for a multiply: either f32 rows or 8-bit quantized rows.
public struct Activations {
    public let pointer: UnsafeRawPointer
    public let rowBytes: Int
    public let count: Int
    @inlinable public init(pointer: UnsafeRawPointer, rowBytes: Int, count: Int) {
        self.pointer = pointer; self.rowBytes = rowBytes; self.count = count
    }
}

/// Scratch space for quantized activations, sized for the largest row length × batch a model needs.
public final class QuantizedScratch: @unchecked Sendable {
    public let capacityBytes: Int
    public let pointer: UnsafeMutableRawPointer

    public init(maxColumns: Int, maxRows: Int) {
        // q8a: 40 bytes per 32 values; q8k: 320 per 256 (rows of K-quant weights are whole 256-value blocks)
        capacityBytes = max(1, max((maxColumns + 31) / 32 * MemoryLayout<sy_block_q8a>.stride,
                                   (maxColumns + 255) / 256 * MemoryLayout<sy_block_q8k>.stride) * maxRows)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: capacityBytes, alignment: 64)
    }
    deinit { pointer.deallocate() }
}

public enum Ops {
    /// Prepares `rows` rows of `columns` floats for a multiply with weights of `type`.
    @inlinable
    public static func prepare(_ x: UnsafePointer<Float>, rows: Int, columns: Int, for type: WeightType,
                               scratch: QuantizedScratch, level: CPUKernels.Level = CPUKernels.active) -> Activations {
        switch type.activationFormat {
        case .q8a:
            let blocks = scratch.pointer.bindMemory(to: sy_block_q8a.self, capacity: rows * columns / 32)
            sy_quantize_rows_q8a_at(Int32(level.rawValue), x, blocks, Int64(columns), Int64(rows))
            return Activations(pointer: UnsafeRawPointer(scratch.pointer), rowBytes: columns / 32 * MemoryLayout<sy_block_q8a>.stride, count: rows)
        case .q8k:
            let blocks = scratch.pointer.bindMemory(to: sy_block_q8k.self, capacity: rows * columns / 256)
            sy_quantize_rows_q8k_at(Int32(level.rawValue), x, blocks, Int64(columns), Int64(rows))
            return Activations(pointer: UnsafeRawPointer(scratch.pointer), rowBytes: columns / 256 * MemoryLayout<sy_block_q8k>.stride, count: rows)
        case .f32:
            return Activations(pointer: UnsafeRawPointer(x), rowBytes: columns * 4, count: rows)
        }
    }

    /// out[c * w.rows + r] = W[r] · x[c], for every row r of `w` and activation row c. Rows are split across the pool.
    @inlinable
    public static func matmul(_ w: WeightMatrix, _ x: Activations, into out: UnsafeMutablePointer<Float>, pool: ThreadPool,
                              level: CPUKernels.Level = CPUKernels.active) {
        pool.runChunked(w.rows, chunk: rowChunk(w.rows, pool: pool)) { _, range in
            matmulRows(w, x, range: range, into: out, ldd: w.rows, level: level)
        }
    }

    /// Rows per dynamically scheduled chunk: about eight chunks per thread, a multiple of 16 (whole 8-row groups).
    @inlinable
    static func rowChunk(_ rows: Int, pool: ThreadPool) -> Int {
        max(16, (rows / (pool.threadCount * 8) + 15) / 16 * 16)
    }

    /// The same multiply for a sub-range of output rows, on the calling thread.
    @inlinable
    public static func matmulRows(_ w: WeightMatrix, _ x: Activations, range: Range<Int>, into out: UnsafeMutablePointer<Float>, ldd: Int,
                                  level: CPUKernels.Level = CPUKernels.active) {
        guard !range.isEmpty else { return }
        _ = sy_matmul_at(Int32(level.rawValue), Int32(w.type.rawValue), Int64(w.columns), w.base, w.rowBytes, Int64(range.lowerBound), Int64(range.upperBound),
                      x.pointer, x.rowBytes, Int64(x.count), out, Int64(ldd))
    }

    /// Several multiplies that read the same activations (Q, K, V or gate, up), in one pass of the pool.
    @inlinable
    public static func matmulGroup(_ ws: [WeightMatrix], _ x: Activations, into outs: [UnsafeMutablePointer<Float>], pool: ThreadPool) {
        // the matrices' rows as one index space, chunks cut at matrix boundaries
        let total = ws.reduce(0) { $0 + $1.rows }
        pool.runChunked(total, chunk: rowChunk(total, pool: pool)) { _, range in
            var base = 0
            for i in 0..<ws.count {
                let lo = max(range.lowerBound, base), hi = min(range.upperBound, base + ws[i].rows)
                if lo < hi { matmulRows(ws[i], x, range: (lo - base)..<(hi - base), into: outs[i], ldd: ws[i].rows) }
                base += ws[i].rows
            }
        }
    }

    /// out = x / rms(x) * weight, for `rows` rows of `n`.
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, n: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * n, o = out + r * n
            var ss: Double = 0
            for i in 0..<n { ss += Double(xr[i] * xr[i]) }
            let mean = Float(ss / Double(n))
            let scale = 1 / (mean + eps).squareRoot()
            for i in 0..<n { o[i] = xr[i] * scale * weight[i] }
        }
    }

    /// cos/sin table for one position: out[2i] = cos(θ_i), out[2i+1] = sin(θ_i), θ_i = pos · scale^i, with θ
    /// advanced by repeated multiplication in single precision (as ggml does, so angles agree bit for bit).
    @inlinable
    public static func ropeTable(position: Int, thetaScale: Float, pairs: Int, factors: UnsafePointer<Float>? = nil,
                                 into out: UnsafeMutablePointer<Float>) {
        var theta = Float(position)
        for i in 0..<pairs {
            // per-pair frequency factors (Llama 3.1's `rope_freqs`) divide the angle, as ggml's freq_factors do
            let angle = factors.map { theta / $0[i] } ?? theta
            out[2 * i] = cos(angle)
            out[2 * i + 1] = sin(angle)
            theta *= thetaScale
        }
    }

    /// Rotary embedding, adjacent pairs (x[2i], x[2i+1]) rotated — ggml's "normal" mode (llama).
    @inlinable
    public static func ropeNormal(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, rotatedDims: Int, table: UnsafePointer<Float>) {
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<(rotatedDims / 2) {
                let c = table[2 * i], s = table[2 * i + 1]
                let a = v[2 * i], b = v[2 * i + 1]
                v[2 * i] = a * c - b * s
                v[2 * i + 1] = a * s + b * c
            }
        }
    }

    /// Rotary embedding, halves (x[i], x[i + d/2]) rotated together — ggml's "neox" mode (qwen2, gemma3).
    @inlinable
    public static func ropeNeox(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, rotatedDims: Int, table: UnsafePointer<Float>) {
        let half = rotatedDims / 2
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<half {
                let c = table[2 * i], s = table[2 * i + 1]
                let a = v[i], b = v[i + half]
                v[i] = a * c - b * s
                v[i + half] = a * s + b * c
            }
        }
    }

    /// Σ a[i]·b[i] over `count` floats (SIMD where the CPU has it).
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        sy_dot_f32(Int64(count), a, b)
    }

    /// h = gelu(h + bias) with the exact (erf) GELU, as BERT's `hidden_act: gelu`.
    @inlinable
    public static func biasGELU(_ h: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, count: Int, level: CPUKernels.Level = CPUKernels.active) {
        sy_bias_gelu_erf_at(Int32(level.rawValue), Int64(count), h, bias)
    }

    /// g = gelu(g) * u (GELU's tanh approximation, as Gemma uses)
    @inlinable
    public static func geluMul(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count: Int, level: CPUKernels.Level = CPUKernels.active) {
        sy_gelu_mul_at(Int32(level.rawValue), Int64(count), g, u)
    }

    /// g = silu(g) * u
    @inlinable
    public static func siluMul(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count: Int, level: CPUKernels.Level = CPUKernels.active) {
        sy_silu_mul_at(Int32(level.rawValue), Int64(count), g, u)
    }

    /// x *= factor
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        for i in 0..<count { x[i] *= factor }
    }

    @inlinable
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }

    /// Attention of one query head over `count` cached positions (see `sy_attention_head`).
    @inlinable
    public static func attention(q: UnsafePointer<Float>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>, count: Int,
                                 headDim: Int, stride: Int, scale: Float, softcap: Float = 0, scratch: UnsafeMutablePointer<Float>,
                                 out: UnsafeMutablePointer<Float>, level: CPUKernels.Level = CPUKernels.active) {
        sy_attention_head_at(Int32(level.rawValue), q, k, v, Int64(count), Int64(headDim), Int64(stride), scale, softcap, scratch, out)
    }

    /// Attention of one query head over 8-bit cached keys and values (`strideBytes` between positions).
    @inlinable
    public static func attentionQ8(q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, count: Int, headDim: Int,
                                   strideBytes: Int, scale: Float, softcap: Float = 0, scratch: UnsafeMutablePointer<Float>,
                                   out: UnsafeMutablePointer<Float>, level: CPUKernels.Level = CPUKernels.active) {
        sy_attention_head_q8_at(Int32(level.rawValue), q, k, v, Int64(count), Int64(headDim), Int64(strideBytes), scale, softcap,
                                scratch, out)
    }

    /// A row of floats into 8-bit blocks of 32 (34 bytes each).
    @inlinable public static func toQ8(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, count: Int) {
        sy_quantize_row_q8_0(x, y, Int64(count))
    }

    @inlinable public static func f16ToF32(_ h: UInt16) -> Float { sy_f16_to_f32(h) }
    /// Rounds a row of floats to half precision.
    @inlinable public static func toHalf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
        sy_f32_to_f16_row(x, y, Int64(count))
    }
    @inlinable public static func f32ToF16(_ f: Float) -> UInt16 { sy_f32_to_f16(f) }
}
