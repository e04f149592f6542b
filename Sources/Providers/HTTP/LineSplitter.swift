/// Splits a byte stream into lines (newline-delimited JSON, as Ollama streams) as bytes arrive, never holding more
/// than `maxLineBytes` of one line. Lines end with LF or CRLF; blank lines are skipped.
public struct LineSplitter: Sendable {
    public enum Failure: Error, Equatable { case lineTooLong(limit: Int) }

    public let maxLineBytes: Int
    private var line: [UInt8] = []

    public init(maxLineBytes: Int = 1 << 20) { self.maxLineBytes = maxLineBytes }

    /// Feeds bytes; returns every line they complete, in order, without its line ending.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [String] {
        var lines: [String] = []
        for b in bytes {
            if b == UInt8(ascii: "\n") {
                if let l = take() { lines.append(l) }
                continue
            }
            guard line.count < maxLineBytes else { throw Failure.lineTooLong(limit: maxLineBytes) }
            line.append(b)
        }
        return lines
    }

    /// The end of the stream: a last line without a line ending still counts.
    public mutating func finish() -> String? { take() }

    private mutating func take() -> String? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else { return nil }
        return String(decoding: line, as: UTF8.self)
    }
}
