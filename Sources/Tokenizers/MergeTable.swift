/// The BPE merge ranks, keyed by symbol ids instead of strings.
///
/// A symbol is a string that can occur during merging. Vocabulary strings use their token id (the id
/// llama.cpp's `text_to_token` returns); strings that occur in merges or as single byte characters but are
/// not in the vocabulary get "virtual" ids from `vocabularySize` up, so merging behaves exactly like
/// llama.cpp's string-based loop even for odd vocabularies.
struct MergeTable: Sendable {
    /// Symbol of each byte's one-character spelling.
    let byteSymbols: [Int32]
    /// `left << 32 | right` → `rank << 32 | merged symbol`.
    let ranks: [UInt64: UInt64]
    let vocabularySize: Int32
    /// What a virtual symbol left over after merging is output as: llama.cpp looks up each byte of its
    /// (byte-level) spelling as a one-byte token and keeps those that exist.
    let virtualFallback: [[Int32]]
    /// Every symbol by its text (vocabulary and virtual), for merging from characters (`encodeCharacters`).
    let symbolIDs: [String: Int32]

    init(textToID: [String: Int32], vocabularySize: Int, merges: [String]) {
        self.vocabularySize = Int32(vocabularySize)
        var symbols = textToID
        var virtualTexts: [String] = []
        func symbol(_ text: String) -> Int32 {
            if let id = symbols[text] { return id }
            let id = Int32(vocabularySize + virtualTexts.count)
            virtualTexts.append(text)
            symbols[text] = id
            return id
        }

        byteSymbols = (0 ..< 256).map { symbol(ByteLevel.string(for: UInt8($0))) }

        var ranks: [UInt64: UInt64] = [:]
        ranks.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            // llama.cpp splits at the first space after the first byte.
            let utf8 = merge.utf8
            guard let firstByte = utf8.indices.first,
                  let space = utf8[utf8.index(after: firstByte)...].firstIndex(of: 0x20) else { continue }
            let left = String(decoding: utf8[..<space], as: UTF8.self)
            let right = String(decoding: utf8[utf8.index(after: space)...], as: UTF8.self)
            guard !right.isEmpty, rank < Int(UInt32.max) else { continue }
            let leftID = symbol(left)
            let rightID = symbol(right)
            let mergedID = symbol(left + right)
            let key = Self.key(leftID, rightID)
            if ranks[key] == nil { // the first occurrence of a pair keeps its rank
                ranks[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedID))
            }
        }
        self.ranks = ranks
        symbolIDs = symbols

        virtualFallback = virtualTexts.map { text in
            text.utf8.compactMap { byte -> Int32? in
                guard byte < 0x80 else { return nil }
                return textToID[String(Unicode.Scalar(byte))]
            }
        }
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    func emit(_ symbol: Int32, into output: inout [Int32]) {
        if symbol < vocabularySize {
            output.append(symbol)
        } else {
            output.append(contentsOf: virtualFallback[Int(symbol - vocabularySize)])
        }
    }

    /// Appends the tokens of one pre-tokenized word (`bytes[word]`, raw UTF-8) to `output`.
    func encode(_ bytes: [UInt8], _ word: Range<Int>, scratch: inout BPEScratch, into output: inout [Int32]) {
        let n = word.count
        if n == 0 { return }
        if n == 1 {
            emit(byteSymbols[Int(bytes[word.lowerBound])], into: &output)
            return
        }
        scratch.reset(count: n)
        let base = word.lowerBound
        for i in 0 ..< n {
            scratch.symbols[i] = byteSymbols[Int(bytes[base + i])]
        }
        merge(count: n, scratch: &scratch)
        var index: Int32 = 0
        while index >= 0 {
            emit(scratch.symbols[Int(index)], into: &output)
            index = scratch.next[Int(index)]
        }
    }

    /// Appends the tokens of one word merged from its UTF-8 characters rather than its bytes (Gemma 4's raw-text
    /// BPE, llama.cpp's `byte_encode = false`): a final symbol that is not a token becomes one `byteTokens` entry per
    /// byte (its `<0xAB>` token; bytes without one are dropped, as llama.cpp drops them).
    func encodeCharacters(_ bytes: [UInt8], _ word: Range<Int>, byteTokens: [Int32], scratch: inout BPEScratch,
                          into output: inout [Int32]) {
        guard !word.isEmpty else { return }
        var starts: [Int] = []
        var i = word.lowerBound
        while i < word.upperBound {
            starts.append(i)
            i += min(SentencePieceTokenizer.utf8Length(bytes[i]), word.upperBound - i)
        }
        let n = starts.count
        scratch.reset(count: n)
        for (k, start) in starts.enumerated() {
            let end = k + 1 < n ? starts[k + 1] : word.upperBound
            scratch.symbols[k] = symbolIDs[String(decoding: bytes[start..<end], as: UTF8.self)] ?? Self.unknownCharacter
        }
        merge(count: n, scratch: &scratch)
        var index: Int32 = 0
        while index >= 0 {
            let k = Int(index)
            let next = scratch.next[k]
            let symbol = scratch.symbols[k]
            if symbol >= 0, symbol < vocabularySize {
                output.append(symbol)
            } else {
                let end = next >= 0 ? starts[Int(next)] : word.upperBound
                for byte in bytes[starts[k]..<end] where byteTokens[Int(byte)] >= 0 { output.append(byteTokens[Int(byte)]) }
            }
            index = next
        }
    }

    /// A character that is neither a token nor part of any merge: it never merges.
    static let unknownCharacter: Int32 = -2

    /// Runs the merges over `scratch.symbols[0 ..< n]`, leaving the chain in `scratch.next` from 0.
    private func merge(count n: Int, scratch: inout BPEScratch) {
        for i in 0 ..< n {
            scratch.previous[i] = Int32(i - 1)
            scratch.next[i] = i + 1 < n ? Int32(i + 1) : -1
        }
        for i in 0 ..< n - 1 {
            push(left: Int32(i), right: Int32(i + 1), scratch: &scratch)
        }
        while let bigram = scratch.heap.popMin() {
            let left = Int(bigram.left)
            let right = Int(bigram.right)
            // Skip bigrams made stale by earlier merges.
            guard scratch.symbols[left] == bigram.leftSymbol, scratch.symbols[right] == bigram.rightSymbol,
                  scratch.next[left] == bigram.right else { continue }
            scratch.symbols[left] = bigram.merged
            scratch.symbols[right] = -1
            let after = scratch.next[right]
            scratch.next[left] = after
            if after >= 0 { scratch.previous[Int(after)] = bigram.left }
            let before = scratch.previous[left]
            if before >= 0 { push(left: before, right: bigram.left, scratch: &scratch) }
            if after >= 0 { push(left: bigram.left, right: after, scratch: &scratch) }
        }
    }

    @inline(__always)
    private func push(left: Int32, right: Int32, scratch: inout BPEScratch) {
        let leftSymbol = scratch.symbols[Int(left)]
        let rightSymbol = scratch.symbols[Int(right)]
        guard let entry = ranks[Self.key(leftSymbol, rightSymbol)] else { return }
        let rank = entry >> 32
        scratch.heap.push(Bigram(order: rank << 32 | UInt64(UInt32(bitPattern: left)), right: right,
                                 leftSymbol: leftSymbol, rightSymbol: rightSymbol,
                                 merged: Int32(bitPattern: UInt32(truncatingIfNeeded: entry))))
    }
}

/// A candidate merge: ordered by rank, then by the left symbol's position.
struct Bigram: HeapOrdered {
    let order: UInt64
    let right: Int32
    let leftSymbol: Int32
    let rightSymbol: Int32
    let merged: Int32

    var left: Int32 { Int32(truncatingIfNeeded: order & 0xFFFF_FFFF) }
}

/// Reusable per-call buffers for merging words.
struct BPEScratch {
    var symbols: [Int32] = []
    var previous: [Int32] = []
    var next: [Int32] = []
    var heap = BigramHeap<Bigram>()

    mutating func reset(count: Int) {
        if symbols.count < count {
            symbols = [Int32](repeating: 0, count: count)
            previous = [Int32](repeating: 0, count: count)
            next = [Int32](repeating: 0, count: count)
        }
        heap.removeAll()
    }
}

/// Something a `BigramHeap` orders: smaller `order` comes out first.
protocol HeapOrdered {
    var order: UInt64 { get }
}

/// Binary min-heap of bigrams by `order` (shared by the BPE and SentencePiece merge loops).
struct BigramHeap<Element: HeapOrdered> {
    private var items: [Element] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].order < items[parent].order else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> Element? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        let count = items.count
        while true {
            let leftChild = 2 * parent + 1
            guard leftChild < count else { break }
            let rightChild = leftChild + 1
            var smallest = leftChild
            if rightChild < count && items[rightChild].order < items[leftChild].order { smallest = rightChild }
            guard items[smallest].order < items[parent].order else { break }
            items.swapAt(smallest, parent)
            parent = smallest
        }
        return top
    }
}
