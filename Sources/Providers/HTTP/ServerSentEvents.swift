/// Splits a byte stream into the `data` of server-sent events as bytes arrive, never holding more than
/// `maxEventBytes` of one event (an upstream that sends an endless line is cut off, not buffered).
/// Lines end with LF, CRLF or CR; `:` lines are comments; fields other than `data` are ignored.
public struct ServerSentEventParser: Sendable {
    public enum Failure: Error, Equatable { case eventTooLong(limit: Int) }

    public let maxEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var afterCR = false

    public init(maxEventBytes: Int = 1 << 20) { self.maxEventBytes = maxEventBytes }

    /// Feeds bytes; returns the data of every event they complete, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [String] {
        var events: [String] = []
        for b in bytes {
            if afterCR {
                afterCR = false
                if b == UInt8(ascii: "\n") { continue }
            }
            switch b {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                afterCR = b == UInt8(ascii: "\r")
                if let e = endLine() { events.append(e) }
            default:
                guard line.count + data.count < maxEventBytes else { throw Failure.eventTooLong(limit: maxEventBytes) }
                line.append(b)
            }
        }
        return events
    }

    /// The end of the stream: an event not yet closed by a blank line still counts.
    public mutating func finish() -> String? {
        if !line.isEmpty, let e = endLine() { return e }
        return dispatch()
    }

    private mutating func endLine() -> String? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return nil }
        var value = colon < line.endIndex ? line.index(after: colon) : colon
        if value < line.endIndex, line[value] == UInt8(ascii: " ") { value += 1 }
        if hasData { data.append(UInt8(ascii: "\n")) }
        data.append(contentsOf: line[value...])
        hasData = true
        return nil
    }

    private mutating func dispatch() -> String? {
        guard hasData else { return nil }
        defer { data.removeAll(keepingCapacity: true); hasData = false }
        return String(decoding: data, as: UTF8.self)
    }
}
