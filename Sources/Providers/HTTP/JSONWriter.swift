import Foundation
import NIOCore

/// Writes JSON text straight into a buffer, for request bodies built on every request (where a `[String: Any]`
/// through JSONSerialization costs more than the rest of the request). Commas are placed by the writer; a key is
/// followed by exactly one value. Numbers that JSON cannot carry (NaN, infinities) are written as `null`.
public struct JSONWriter {
    public private(set) var buffer: ByteBuffer
    /// One entry per open object or array: whether nothing has been written in it yet.
    private var empty: [Bool] = []
    private var afterKey = false

    public init(capacity: Int = 512) { buffer = ByteBuffer(); buffer.reserveCapacity(capacity) }

    public mutating func beginObject() { separate(); buffer.writeInteger(UInt8(ascii: "{")); empty.append(true) }
    public mutating func endObject() { buffer.writeInteger(UInt8(ascii: "}")); empty.removeLast() }
    public mutating func beginArray() { separate(); buffer.writeInteger(UInt8(ascii: "[")); empty.append(true) }
    public mutating func endArray() { buffer.writeInteger(UInt8(ascii: "]")); empty.removeLast() }

    public mutating func key(_ name: String) {
        separate()
        writeQuoted(name)
        buffer.writeInteger(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) { separate(); writeQuoted(value) }
    public mutating func int<I: BinaryInteger>(_ value: I) { separate(); buffer.writeString(String(value)) }
    public mutating func double(_ value: Double) {
        separate()
        buffer.writeString(value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)") : "null")
    }
    public mutating func bool(_ value: Bool) { separate(); buffer.writeString(value ? "true" : "false") }
    public mutating func null() { separate(); buffer.writeString("null") }
    /// `json` as it is: the caller vouches that it is one valid JSON value.
    public mutating func raw(_ json: String) { separate(); buffer.writeString(json) }

    public mutating func field(_ name: String, _ value: String) { key(name); string(value) }
    public mutating func field(_ name: String, _ value: Bool) { key(name); bool(value) }
    public mutating func field(_ name: String, _ value: Double) { key(name); double(value) }
    public mutating func field<I: BinaryInteger>(_ name: String, _ value: I) { key(name); int(value) }

    private mutating func separate() {
        if afterKey { afterKey = false; return }
        guard let last = empty.indices.last else { return }
        if empty[last] { empty[last] = false } else { buffer.writeInteger(UInt8(ascii: ",")) }
    }

    private mutating func writeQuoted(_ text: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { u in
            var start = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                buffer.writeBytes(UnsafeBufferPointer(rebasing: u[start..<i]))
                start = i + 1
                switch c {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]])
                }
            }
            buffer.writeBytes(UnsafeBufferPointer(rebasing: u[start..<u.count]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
