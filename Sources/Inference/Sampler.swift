#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the next token is chosen. Defaults follow llama.cpp's.
public struct SamplingParameters: Sendable, Equatable, Hashable, Codable {
    /// 0 (or less) → greedy.
    public var temperature: Float = 0.8
    /// 0 → disabled.
    public var topK: Int = 40
    /// 1 → disabled.
    public var topP: Float = 0.95
    /// 0 → disabled.
    public var minP: Float = 0.05
    /// 1 → disabled. Divides positive logits (multiplies negative ones) of tokens seen in the last `repeatLastN`.
    public var repeatPenalty: Float = 1.0
    public var repeatLastN: Int = 64
    /// Subtracted once from the logit of every token already generated.
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence.
    public var frequencyPenalty: Float = 0
    /// Same seed and settings ⇒ same tokens. nil → a random seed.
    public var seed: UInt64?

    public init() {}

    public static var greedy: SamplingParameters {
        var p = SamplingParameters(); p.temperature = 0; return p
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast, reproducible across platforms.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// Chooses tokens from logits: penalties → top-k → top-p → min-p → temperature → draw.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    public let seed: UInt64
    private var rng: SeededGenerator
    private var candidates: [(id: Int32, logit: Float)] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        seed = parameters.seed ?? UInt64.random(in: 0...UInt64.max)
        rng = SeededGenerator(seed: seed)
    }

    /// Picks the next token. `logits` may be modified (penalties). `history` holds prompt and generated tokens;
    /// `generatedCount` how many at its end were generated (presence/frequency penalties count only those).
    public mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int32], generatedCount: Int) -> Int32 {
        applyPenalties(logits, history: history, generatedCount: generatedCount)
        if parameters.temperature <= 0 { return Sampler.argmax(UnsafeBufferPointer(logits)) }
        selectTop(parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count, from: UnsafeBufferPointer(logits))
        return draw()
    }

    /// Picks the next token among those `allows` admits (a grammar's): the same choice as `sample` over the logits
    /// with every other token removed. The most likely tokens are checked one by one first; only when too few of them
    /// are allowed is `mask` (every allowed token) asked for. nil: no token is allowed.
    public mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int32], generatedCount: Int,
                                allows: (Int32) -> Bool, mask: () -> (Int32) -> Bool) -> Int32? {
        applyPenalties(logits, history: history, generatedCount: generatedCount)
        let greedy = parameters.temperature <= 0
        let need = greedy ? 1 : (parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count)
        // Most steps of a constrained answer take what the model wanted anyway: the same work as unconstrained.
        if greedy {
            let best = Sampler.argmax(UnsafeBufferPointer(logits))
            if allows(best) { return best }
        } else if need <= 256 {
            selectTop(need, from: UnsafeBufferPointer(logits))
            if candidates.allSatisfy({ allows($0.id) }) { return draw() }
        }
        // The `probe` best tokens hold the `need` best allowed ones when enough of them are allowed.
        let probe = min(logits.count, max(64, need * 4))
        if need <= 256 {
            selectTop(probe, from: UnsafeBufferPointer(logits))
            var kept = 0
            for c in candidates where allows(c.id) {
                candidates[kept] = c
                kept += 1
                if kept == need { break }
            }
            if kept == need || probe == logits.count {
                candidates.removeLast(candidates.count - kept)
                guard kept > 0 else { return nil }
                return greedy ? candidates[0].id : draw()
            }
        }
        let allowed = mask()
        for i in 0..<logits.count where !allowed(Int32(i)) { logits[i] = -.infinity }
        selectTop(need, from: UnsafeBufferPointer(logits))
        while let last = candidates.last, last.logit == -.infinity { candidates.removeLast() }
        guard !candidates.isEmpty else { return nil }
        return greedy ? candidates[0].id : draw()
    }

    /// top-p → min-p → temperature → draw, over `candidates` (sorted, most likely first, not empty).
    private mutating func draw() -> Int32 {
        // probabilities at temperature 1 for top-p / min-p
        let maxLogit = candidates[0].logit
        var probs = candidates.map { exp(Double($0.logit - maxLogit)) }
        var total = probs.reduce(0, +)
        var keep = candidates.count
        if parameters.topP < 1 {
            var cumulative = 0.0
            for i in 0..<keep {
                cumulative += probs[i] / total
                if cumulative >= Double(parameters.topP) { keep = i + 1; break }
            }
        }
        if parameters.minP > 0 {
            let threshold = probs[0] * Double(parameters.minP)
            var i = 1
            while i < keep, probs[i] >= threshold { i += 1 }
            keep = i
        }
        // temperature, then draw
        let invT = 1 / Double(parameters.temperature)
        total = 0
        for i in 0..<keep {
            probs[i] = exp(Double(candidates[i].logit - maxLogit) * invT)
            total += probs[i]
        }
        var r = rng.nextUnit() * total
        for i in 0..<keep {
            r -= probs[i]
            if r < 0 { return candidates[i].id }
        }
        return candidates[keep - 1].id
    }

    private func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int32], generatedCount: Int) {
        let p = parameters
        if p.repeatPenalty != 1, p.repeatLastN != 0 {
            let window = p.repeatLastN < 0 ? history.count : min(p.repeatLastN, history.count)
            var seen = Set<Int32>()
            for id in history.suffix(window) where seen.insert(id).inserted && Int(id) < logits.count && id >= 0 {
                let l = logits[Int(id)]
                logits[Int(id)] = l > 0 ? l / p.repeatPenalty : l * p.repeatPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for id in history.suffix(max(0, min(generatedCount, history.count))) { counts[id, default: 0] += 1 }
            for (id, c) in counts where id >= 0 && Int(id) < logits.count {
                logits[Int(id)] -= Float(c) * p.frequencyPenalty + p.presencePenalty
            }
        }
    }

    /// Fills `candidates` with the k largest logits, sorted descending.
    private mutating func selectTop(_ k: Int, from logits: UnsafeBufferPointer<Float>) {
        candidates.removeAll(keepingCapacity: true)
        if k >= logits.count / 4 {
            for i in 0..<logits.count { candidates.append((Int32(i), logits[i])) }
            candidates.sort { $0.logit > $1.logit }
            if candidates.count > k { candidates.removeLast(candidates.count - k) }
            return
        }
        // min-heap of size k
        var heap: [(id: Int32, logit: Float)] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, heap[l].logit < heap[m].logit { m = l }
                if r < heap.count, heap[r].logit < heap[m].logit { m = r }
                if m == i { return }
                heap.swapAt(i, m); i = m
            }
        }
        for i in 0..<logits.count {
            let v = logits[i]
            if heap.count < k {
                heap.append((Int32(i), v))
                var c = heap.count - 1
                while c > 0 {
                    let parent = (c - 1) / 2
                    if heap[parent].logit <= heap[c].logit { break }
                    heap.swapAt(parent, c); c = parent
                }
            } else if v > heap[0].logit {
                heap[0] = (Int32(i), v)
                siftDown(0)
            }
        }
        candidates = heap.sorted { $0.logit > $1.logit }
    }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<logits.count where logits[i] > bestValue { bestValue = logits[i]; best = i }
        return Int32(best)
    }

    /// log-softmax value of `id`, and the `n` most likely (id, logprob), from raw logits.
    public static func logProbabilities(_ logits: UnsafeBufferPointer<Float>, chosen id: Int32, top n: Int) -> (Float, [(Int32, Float)]) {
        var maxL = -Float.infinity
        for v in logits where v > maxL { maxL = v }
        var sum = 0.0
        for v in logits { sum += exp(Double(v - maxL)) }
        let logZ = Float(log(sum)) + maxL
        var top: [(Int32, Float)] = []
        if n > 0 {
            var s = Sampler(.greedy)
            s.selectTop(min(n, logits.count), from: logits)
            top = s.candidates.map { ($0.id, $0.logit - logZ) }
        }
        return (logits[Int(id)] - logZ, top)
    }
}
