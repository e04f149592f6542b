import Foundation

/// The pieces of a SentencePiece model file (`tokenizer.model`, a serialized `ModelProto`): each piece's text, score
/// and type, in id order — what llama.cpp's converter reads for Llama 2, Mistral and Gemma. Only `ModelProto.pieces`
/// (field 1) is read; every other field is skipped by its wire type. Bad input is a `TokenizerError`, never a trap.
public struct SentencePieceModelFile: Sendable, Equatable {
    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        /// SentencePiece's type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte — the numbers
        /// `tokenizer.ggml.token_type` uses.
        public var type: Int
    }

    public var pieces: [Piece]

    public init(contentsOf url: URL) throws(TokenizerError) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .invalidVocabulary("cannot read \(url.path)")
        }
        try self.init(data: data)
    }

    public init(data: Data) throws(TokenizerError) {
        let bytes = [UInt8](data)
        var reader = ProtobufReader(bytes: bytes, range: 0..<bytes.count)
        var pieces: [Piece] = []
        while let (field, wire) = try reader.tag() {
            if field == 1, wire == 2 {
                var inner = ProtobufReader(bytes: bytes, range: try reader.lengthDelimited())
                var piece = Piece(text: "", score: 0, type: 1)
                while let (f, w) = try inner.tag() {
                    switch (f, w) {
                    case (1, 2):
                        let range = try inner.lengthDelimited()
                        guard let text = String(validating: bytes[range], as: UTF8.self) else {
                            throw .invalidVocabulary("tokenizer.model: piece \(pieces.count) is not UTF-8")
                        }
                        piece.text = text
                    case (2, 5): piece.score = Float(bitPattern: try inner.fixed32())
                    case (3, 0):
                        let type = try inner.varint()
                        guard (1...6).contains(type) else { throw .invalidVocabulary("tokenizer.model: piece \(pieces.count) has type \(type)") }
                        piece.type = Int(type)
                    default: try inner.skip(wire: w)
                    }
                }
                pieces.append(piece)
            } else {
                try reader.skip(wire: wire)
            }
        }
        guard !pieces.isEmpty else { throw .invalidVocabulary("tokenizer.model holds no pieces") }
        self.pieces = pieces
    }
}

/// Protocol Buffers' wire format, as far as reading needs it: tags, varints, fixed widths, length-delimited spans.
struct ProtobufReader {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    /// The next field number and wire type; nil at the end.
    mutating func tag() throws(TokenizerError) -> (Int, Int)? {
        guard position < end else { return nil }
        let key = try varint()
        guard key >> 3 > 0, key >> 3 < 1 << 29 else { throw .invalidVocabulary("tokenizer.model: a field number of 0 or past 2^29") }
        return (Int(key >> 3), Int(key & 7))
    }

    mutating func varint() throws(TokenizerError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end, shift < 64 else { throw .invalidVocabulary("tokenizer.model: a varint runs past its message") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws(TokenizerError) -> UInt32 {
        guard end - position >= 4 else { throw .invalidVocabulary("tokenizer.model: a 32-bit field runs past its message") }
        defer { position += 4 }
        return UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16 | UInt32(bytes[position + 3]) << 24
    }

    mutating func lengthDelimited() throws(TokenizerError) -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - position) else { throw .invalidVocabulary("tokenizer.model: a field of \(length) bytes runs past its message") }
        defer { position += Int(length) }
        return position..<(position + Int(length))
    }

    mutating func skip(wire: Int) throws(TokenizerError) {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard end - position >= 8 else { throw .invalidVocabulary("tokenizer.model: a 64-bit field runs past its message") }
            position += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw .invalidVocabulary("tokenizer.model: wire type \(wire) is not one Protocol Buffers writes")
        }
    }
}
