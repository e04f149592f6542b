/// A grammar compiled to bytes: what the matcher runs. Character classes became sequences of byte sets (a class
/// beyond ASCII becomes a small rule whose alternatives are its UTF-8 encodings), so the matcher never decodes
/// UTF-8 and a token that ends inside a character needs no special case.
///
/// Layout: every alternative of every rule is a run of elements in one flat array, ended by `end`; a position is an
/// index into that array.
public struct Grammar: Sendable, CustomStringConvertible {
    @usableFromInline enum Element: Sendable, Equatable {
        /// One byte from the set `sets[index]`.
        case bytes(Int32)
        /// Expand rule `index`.
        case rule(Int32)
        /// The end of an alternative.
        case end
    }

    @usableFromInline let elements: [Element]
    /// 256-bit byte sets, four words each.
    @usableFromInline let sets: [UInt64]
    /// Per rule: the positions where its alternatives start.
    @usableFromInline let starts: [[Int32]]
    @usableFromInline let root: Int32
    /// Rule names, for messages.
    public let ruleNames: [String]

    /// Compiles GBNF text (`root` is the start rule).
    public init(gbnf: String) throws(GrammarError) {
        try self.init(try GBNFParser.parse(gbnf))
    }

    public init(_ rules: RuleSet) throws(GrammarError) {
        var b = Builder(rules)
        try b.build()
        elements = b.elements; sets = b.sets; starts = b.starts; root = Int32(rules.root); ruleNames = b.names
    }

    public var description: String { "Grammar(\(starts.count) rules, \(elements.count) elements)" }

    @inlinable func setContains(_ set: Int32, _ byte: UInt8) -> Bool {
        sets[Int(set) &* 4 &+ Int(byte >> 6)] & (1 << UInt64(byte & 63)) != 0
    }

    private struct Builder {
        let rules: RuleSet
        var names: [String]
        var elements: [Element] = []
        var sets: [UInt64] = []
        var setIndex: [[UInt64]: Int32] = [:]
        var starts: [[Int32]] = []
        var pending: [[[[ClosedRange<UInt8>]]]] = []   // alternatives of the rules made for multi-byte classes
        var classRules: [[ClosedRange<UInt32>]: Int] = [:]

        init(_ rules: RuleSet) { self.rules = rules; names = rules.names }

        mutating func build() throws(GrammarError) {
            let n = rules.alternatives.count
            var bodies: [[[Element]]] = []
            for r in 0..<n {
                var alts: [[Element]] = []
                for seq in rules.alternatives[r] {
                    var out: [Element] = []
                    for term in seq {
                        switch term {
                        case .rule(let s): out.append(.rule(Int32(s)))
                        case .chars(let ranges): out += try chars(ranges, owner: r)
                        }
                    }
                    alts.append(out)
                }
                bodies.append(alts)
            }
            // Rules made for classes beyond ASCII follow the grammar's own.
            for alts in pending {
                var converted: [[Element]] = []
                for seq in alts {
                    var out: [Element] = []
                    for position in seq { out.append(.bytes(byteSet(position))) }
                    converted.append(out)
                }
                bodies.append(converted)
            }
            for alts in bodies {
                var s: [Int32] = []
                for seq in alts {
                    s.append(Int32(elements.count))
                    elements += seq
                    elements.append(.end)
                }
                starts.append(s)
            }
            if elements.count > 4_000_000 { throw .tooLarge("more than 4 million elements") }
        }

        /// A class as elements: one byte set when every encoding is one byte sequence shape, else a class rule.
        mutating func chars(_ ranges: [ClosedRange<UInt32>], owner: Int) throws(GrammarError) -> [Element] {
            let seqs = UTF8Ranges.sequences(ranges)
            guard !seqs.isEmpty else {
                // Matches nothing: a set with no bytes.
                return [.bytes(byteSet([ClosedRange<UInt8>]()))]
            }
            if seqs.allSatisfy({ $0.count == 1 }) {
                return [.bytes(byteSet(seqs.map { $0[0] }))]
            }
            if seqs.count == 1 {
                var out: [Element] = []
                for r in seqs[0] { out.append(.bytes(byteSet(r))) }
                return out
            }
            if let r = classRules[ranges] { return [.rule(Int32(r))] }
            let id = rules.alternatives.count + pending.count
            pending.append(Self.merged(seqs))
            names.append("\(rules.names[owner])-class-\(id)")
            classRules[ranges] = id
            return [.rule(Int32(id))]
        }

        /// Single-byte sequences joined into one alternative (one set), so ASCII parts of a class do not branch.
        static func merged(_ seqs: [[ClosedRange<UInt8>]]) -> [[[ClosedRange<UInt8>]]] {
            let single = seqs.filter { $0.count == 1 }
            let multi = seqs.filter { $0.count > 1 }
            var out = multi.map { $0.map { [$0] } }
            if !single.isEmpty { out.insert([single.map { $0[0] }], at: 0) }
            return out
        }

        mutating func byteSet(_ r: ClosedRange<UInt8>) -> Int32 { byteSet([r]) }

        mutating func byteSet(_ ranges: [ClosedRange<UInt8>]) -> Int32 {
            var words = [UInt64](repeating: 0, count: 4)
            for r in ranges {
                for b in r { words[Int(b >> 6)] |= 1 << UInt64(b & 63) }
            }
            if let i = setIndex[words] { return i }
            let i = Int32(sets.count / 4)
            sets += words
            setIndex[words] = i
            return i
        }
    }
}

/// Code point ranges as UTF-8 byte-range sequences: each sequence is one byte range per byte of the encoding, and
/// the code points of the input are exactly the union of what the sequences match. Surrogates are left out.
enum UTF8Ranges {
    static func sequences(_ ranges: [ClosedRange<UInt32>]) -> [[ClosedRange<UInt8>]] {
        var out: [[ClosedRange<UInt8>]] = []
        for r in ranges {
            let hi = min(r.upperBound, 0x10FFFF)
            guard r.lowerBound <= hi else { continue }
            split(r.lowerBound, hi, into: &out)
        }
        return out
    }

    private static func split(_ lo: UInt32, _ hi: UInt32, into out: inout [[ClosedRange<UInt8>]]) {
        if lo > hi { return }
        // Surrogates are not characters.
        if lo <= 0xDFFF, hi >= 0xD800 {
            if lo < 0xD800 { split(lo, 0xD7FF, into: &out) }
            if hi > 0xDFFF { split(0xE000, hi, into: &out) }
            return
        }
        // Encodings of different lengths.
        for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where lo <= boundary && hi > boundary {
            split(lo, boundary, into: &out)
            split(boundary + 1, hi, into: &out)
            return
        }
        if hi <= 0x7F { out.append([UInt8(lo)...UInt8(hi)]); return }
        // Same length: split until every continuation byte spans a whole aligned block.
        let n = encodedLength(lo)
        for i in 1..<n {
            let m: UInt32 = (1 << (6 * UInt32(i))) - 1
            if lo & ~m != hi & ~m {
                if lo & m != 0 {
                    split(lo, lo | m, into: &out)
                    split((lo | m) + 1, hi, into: &out)
                    return
                }
                if hi & m != m {
                    split(lo, (hi & ~m) - 1, into: &out)
                    split(hi & ~m, hi, into: &out)
                    return
                }
            }
        }
        let a = encode(lo), b = encode(hi)
        out.append((0..<n).map { a[$0]...b[$0] })
    }

    static func encodedLength(_ c: UInt32) -> Int { c <= 0x7F ? 1 : c <= 0x7FF ? 2 : c <= 0xFFFF ? 3 : 4 }

    static func encode(_ c: UInt32) -> [UInt8] {
        switch encodedLength(c) {
        case 1: return [UInt8(c)]
        case 2: return [UInt8(0xC0 | c >> 6), UInt8(0x80 | c & 0x3F)]
        case 3: return [UInt8(0xE0 | c >> 12), UInt8(0x80 | (c >> 6) & 0x3F), UInt8(0x80 | c & 0x3F)]
        default: return [UInt8(0xF0 | c >> 18), UInt8(0x80 | (c >> 12) & 0x3F), UInt8(0x80 | (c >> 6) & 0x3F), UInt8(0x80 | c & 0x3F)]
        }
    }
}
