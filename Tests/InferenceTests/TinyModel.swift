import Foundation
import GGUF

/// Builds a small random llama-architecture GGUF (F32/Q8_0/Q4_1 weights) so the forward pass can be tested
/// without the real model.
enum TinyModel {
    struct Shape {
        var dim = 64, layers = 2, heads = 4, kvHeads = 2, ffn = 96, vocab = 80, context = 64
    }

    /// `qkvBias`: also write `attn_q/k/v.bias` (Qwen2), filled with this constant. `neoxOrder`: store the query and
    /// key rows of each head in NeoX order (rows 0, 2, 4, … then 1, 3, 5, …), so that NeoX rotary over them computes
    /// exactly what adjacent-pair rotary computes over the llama order.
    static func bytes(_ s: Shape = Shape(), architecture: String = "llama", seed: UInt64 = 1, weightType: GGMLType = .q8_0,
                      qkvBias: Float? = nil, neoxOrder: Bool = false, ropeFactors: [Float]? = nil) -> [UInt8] {
        var state = seed
        func rand() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        func f32(_ n: Int, scale: Float, offset: Float = 0) -> [UInt8] {
            (0..<n).map { _ in rand() * scale + offset }.withUnsafeBytes { Array($0) }
        }
        func half(_ x: Float) -> [UInt8] {
            var f = x
            var bits: UInt32 = 0
            withUnsafeBytes(of: &f) { bits = $0.load(as: UInt32.self) }
            let sign = UInt16((bits >> 16) & 0x8000)
            let exp = Int((bits >> 23) & 0xFF) - 127 + 15
            let mant = UInt16((bits >> 13) & 0x3FF)
            let h: UInt16 = exp <= 0 ? sign : (exp >= 31 ? sign | 0x7C00 : sign | UInt16(exp) << 10 | mant)
            return [UInt8(h & 0xFF), UInt8(h >> 8)]
        }
        func weight(_ rows: Int, _ cols: Int) -> [UInt8] {
            let scale = 1 / Float(cols).squareRoot()
            var out: [UInt8] = []
            for _ in 0..<rows {
                for _ in 0..<(cols / 32) {
                    let v = (0..<32).map { _ in rand() * scale }
                    switch weightType {
                    case .q4_1:
                        let mn = v.min()!, mx = v.max()!
                        let d = (mx - mn) / 15, id = d == 0 ? 0 : 1 / d
                        out += half(d) + half(mn)
                        for i in 0..<16 {
                            let lo = UInt8(min(15, max(0, Int(((v[i] - mn) * id).rounded()))))
                            let hi = UInt8(min(15, max(0, Int(((v[i + 16] - mn) * id).rounded()))))
                            out.append(lo | hi << 4)
                        }
                    default:
                        let amax = v.map(abs).max()!
                        let d = amax / 127, id = d == 0 ? 0 : 1 / d
                        out += half(d)
                        out += v.map { UInt8(bitPattern: Int8(($0 * id).rounded())) }
                    }
                }
            }
            return out
        }
        let a = architecture
        var w = GGUFWriter()
        w.set("general.architecture", .string(a))
        w.set("general.name", .string("tiny"))
        w.set("\(a).embedding_length", .uint32(UInt32(s.dim)))
        w.set("\(a).block_count", .uint32(UInt32(s.layers)))
        w.set("\(a).feed_forward_length", .uint32(UInt32(s.ffn)))
        w.set("\(a).attention.head_count", .uint32(UInt32(s.heads)))
        w.set("\(a).attention.head_count_kv", .uint32(UInt32(s.kvHeads)))
        w.set("\(a).context_length", .uint32(UInt32(s.context)))
        w.set("\(a).rope.freq_base", .float32(10000))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5))
        let kvDim = s.dim / s.heads * s.kvHeads
        w.addTensor(name: "token_embd.weight", dimensions: [s.dim, s.vocab], type: .q8_0, data: {
            let saved = weightType
            _ = saved
            return weightQ8(s.vocab, s.dim)
        }())
        func weightQ8(_ rows: Int, _ cols: Int) -> [UInt8] {
            var out: [UInt8] = []
            for _ in 0..<(rows * cols / 32) {
                let v = (0..<32).map { _ in rand() }
                let amax = v.map(abs).max()!
                let d = amax / 127
                out += half(d)
                out += v.map { UInt8(bitPattern: Int8(($0 / d).rounded())) }
            }
            return out
        }
        func neox(_ data: [UInt8], rows: Int) -> [UInt8] {
            guard neoxOrder else { return data }
            let rowBytes = data.count / rows, hd = s.dim / s.heads, half = hd / 2
            var out: [UInt8] = []
            for head in 0..<(rows / hd) {
                for i in 0..<hd {
                    let src = head * hd + (i < half ? 2 * i : 2 * (i - half) + 1)
                    out += data[(src * rowBytes)..<((src + 1) * rowBytes)]
                }
            }
            return out
        }
        for l in 0..<s.layers {
            let p = "blk.\(l)."
            if let b = qkvBias {
                let bias = { (n: Int) in [Float](repeating: b, count: n).withUnsafeBytes { Array($0) } }
                w.addTensor(name: p + "attn_q.bias", dimensions: [s.dim], type: .f32, data: bias(s.dim))
                w.addTensor(name: p + "attn_k.bias", dimensions: [kvDim], type: .f32, data: bias(kvDim))
                w.addTensor(name: p + "attn_v.bias", dimensions: [kvDim], type: .f32, data: bias(kvDim))
            }
            w.addTensor(name: p + "attn_norm.weight", dimensions: [s.dim], type: .f32, data: f32(s.dim, scale: 0.1, offset: 1))
            w.addTensor(name: p + "attn_q.weight", dimensions: [s.dim, s.dim], type: weightType, data: neox(weight(s.dim, s.dim), rows: s.dim))
            w.addTensor(name: p + "attn_k.weight", dimensions: [s.dim, kvDim], type: weightType, data: neox(weight(kvDim, s.dim), rows: kvDim))
            w.addTensor(name: p + "attn_v.weight", dimensions: [s.dim, kvDim], type: weightType, data: weight(kvDim, s.dim))
            w.addTensor(name: p + "attn_output.weight", dimensions: [s.dim, s.dim], type: weightType, data: weight(s.dim, s.dim))
            w.addTensor(name: p + "ffn_norm.weight", dimensions: [s.dim], type: .f32, data: f32(s.dim, scale: 0.1, offset: 1))
            w.addTensor(name: p + "ffn_gate.weight", dimensions: [s.dim, s.ffn], type: weightType, data: weight(s.ffn, s.dim))
            w.addTensor(name: p + "ffn_up.weight", dimensions: [s.dim, s.ffn], type: weightType, data: weight(s.ffn, s.dim))
            w.addTensor(name: p + "ffn_down.weight", dimensions: [s.ffn, s.dim], type: weightType, data: weight(s.dim, s.ffn))
        }
        w.addTensor(name: "output_norm.weight", dimensions: [s.dim], type: .f32, data: f32(s.dim, scale: 0.1, offset: 1))
        if let ropeFactors { w.addTensor(name: "rope_freqs.weight", dimensions: [ropeFactors.count], type: .f32, data: ropeFactors.withUnsafeBytes { Array($0) }) }
        return w.bytes()
    }
}
