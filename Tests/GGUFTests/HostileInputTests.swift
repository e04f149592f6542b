import Testing
@testable import GGUF

/// A file with one tensor "t" (info at offset 24: name length 24, name 32, n_dims 33, dims from 37)
/// and `dataBytes` zero bytes of data after the aligned info section.
func oneTensorFile(dims: [UInt64] = [4], type: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int = 16) -> [UInt8] {
    var raw = RawGGUF()
    raw.header(tensors: 1, kvs: 0)
    raw.tensorInfo("t", dims: dims, type: type, offset: offset)
    raw.pad()
    raw.zeros(dataBytes)
    return raw.bytes
}

/// A file with one key "x" (key length at 24, key byte 32, value type at 33, value from 37).
func oneValueFile(type: UInt32, payload: (inout RawGGUF) -> Void) -> [UInt8] {
    var raw = RawGGUF()
    raw.header(tensors: 0, kvs: 1)
    raw.string("x")
    raw.u32(type)
    payload(&raw)
    return raw.bytes
}

@Suite struct HostileInputTests {
    @Test func sanityOfHandBuiltFiles() throws {
        let file = try GGUFFile(bytes: oneTensorFile())
        #expect(file.tensors.count == 1 && file.dataOffset == 64 && file.fileSize == 80)
        let v = try GGUFFile(bytes: oneValueFile(type: 4) { $0.u32(7) })
        #expect(v.metadata["x"] == .uint32(7))
    }

    @Test func wrongMagic() {
        var bytes = GGUFWriter().bytes()
        bytes[3] = 0x4C  // "GGUL"
        #expect(loadError(bytes) == .badMagic(found: 0x4C55_4747))
        #expect(loadError(Array("GGML and more bytes here....".utf8)) == .badMagic(found: 0x4C4D_4747))
        #expect(GGUFError.badMagic(found: 0x4C4D_4747).description.contains("\"GGML\""))
    }

    @Test func unsupportedVersions() {
        for version: UInt32 in [0, 1, 4, 0x0300_0000] {
            var raw = RawGGUF()
            raw.header(version: version, tensors: 0, kvs: 0)
            #expect(loadError(raw.bytes) == .unsupportedVersion(version))
        }
        #expect(GGUFError.unsupportedVersion(1).description.contains("version 1"))
        #expect(GGUFError.unsupportedVersion(0x0300_0000).description.contains("big-endian"))
    }

    @Test func everyTruncationThrows() throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("tokens", .array([.string("<s>"), .string("hi"), .string("")]))
        writer.set("nested", .array([.array([.int32(1)]), .array([])]))
        writer.set("f", .float64(1))
        writer.addTensor(name: "w", dimensions: [32, 2], type: .q8_0, data: Array(repeating: 1, count: 68))
        writer.addTensor(name: "b", dimensions: [3], type: .f32, data: Array(repeating: 2, count: 12))
        let bytes = writer.bytes()
        let full = try GGUFFile(bytes: bytes)
        let needed = try #require(full.tensors.map { full.dataOffset + $0.offset + $0.byteCount }.max())
        #expect(needed < bytes.count)  // the writer pads the last tensor; trimming padding is harmless
        for length in 0..<bytes.count {
            let error = loadError(Array(bytes[0..<length]))
            if length < needed {
                #expect(error != nil, "prefix of \(length) bytes loaded")
            } else {
                #expect(error == nil, "prefix of \(length) bytes failed: \(String(describing: error))")
            }
        }
        #expect(loadError([]) == .truncated(what: "magic", offset: 0))
        #expect(loadError(Array(bytes[0..<20])) == .truncated(what: "metadata key/value count", offset: 16))
        #expect(loadError(Array(bytes[0..<6])) == .truncated(what: "version", offset: 4))
        #expect(loadError(Array(bytes[0..<12])) == .truncated(what: "tensor count", offset: 8))
    }

    @Test func countsThatCannotFit() {
        for count: UInt64 in [1 << 62, .max, 1 << 60, 3] {
            var raw = RawGGUF()
            raw.header(tensors: 0, kvs: count)
            #expect(loadError(raw.bytes) == .countTooLarge(what: "metadata key/value count", count: count, offset: 16))
            raw = RawGGUF()
            raw.header(tensors: count, kvs: 0)
            #expect(loadError(raw.bytes) == .countTooLarge(what: "tensor count", count: count, offset: 8))
        }
        // Array lengths, for small and large element types.
        for elementType: UInt32 in [0, 8, 9, 12] {
            for count: UInt64 in [1 << 60, .max, 1 << 32] {
                let bytes = oneValueFile(type: 9) { $0.u32(elementType); $0.u64(count); $0.zeros(16) }
                #expect(loadError(bytes) == .countTooLarge(what: "array length of 'x'", count: count, offset: 41))
            }
        }
    }

    @Test func stringLengthsPastTheEnd() {
        // A key length.
        var raw = RawGGUF()
        raw.header(tensors: 0, kvs: 1)
        raw.u64(1 << 60)
        raw.zeros(8)
        #expect(loadError(raw.bytes) == .stringTooLong(length: 1 << 60, offset: 24))
        // A string value one byte longer than what is left.
        let bytes = oneValueFile(type: 8) { $0.u64(6); $0.bytes.append(contentsOf: Array("hello".utf8)) }
        #expect(loadError(bytes) == .stringTooLong(length: 6, offset: 37))
        // A tensor name.
        raw = RawGGUF()
        raw.header(tensors: 1, kvs: 0)
        raw.u64(.max)
        raw.zeros(40)
        #expect(loadError(raw.bytes) == .stringTooLong(length: .max, offset: 24))
    }

    @Test func invalidUTF8() {
        var raw = RawGGUF()
        raw.header(tensors: 0, kvs: 1)
        raw.stringBytes([0x61, 0xFF, 0x62])
        raw.u32(0)
        raw.u8(0)
        #expect(loadError(raw.bytes) == .invalidUTF8(offset: 32))
        let bytes = oneValueFile(type: 8) { $0.stringBytes([0xC3]) }  // a lone lead byte
        #expect(loadError(bytes) == .invalidUTF8(offset: 45))
    }

    @Test func unknownValueTypes() {
        #expect(loadError(oneValueFile(type: 13) { $0.zeros(8) }) == .unknownValueType(13, key: "x", offset: 33))
        #expect(loadError(oneValueFile(type: .max) { $0.zeros(8) }) == .unknownValueType(.max, key: "x", offset: 33))
        let bytes = oneValueFile(type: 9) { $0.u32(99); $0.u64(1); $0.zeros(8) }
        #expect(loadError(bytes) == .unknownValueType(99, key: "x", offset: 37))
    }

    @Test func arrayNestingIsBounded() throws {
        func nested(_ depth: Int) -> GGUFValue {
            var v = GGUFValue.uint8(1)
            for _ in 0..<depth { v = .array([v]) }
            return v
        }
        var writer = GGUFWriter()
        writer.set("ok", nested(8))
        #expect(try GGUFFile(bytes: writer.bytes()).metadata["ok"] == nested(8))
        writer = GGUFWriter()
        writer.set("deep", nested(9))
        guard case .nestingTooDeep(key: "deep", _)? = loadError(writer.bytes()) else {
            Issue.record("expected nestingTooDeep")
            return
        }
        // A hostile chain of a million nested array headers fails at depth 9, without recursion trouble.
        var raw = RawGGUF()
        raw.header(tensors: 0, kvs: 1)
        raw.string("bomb")
        raw.u32(9)
        for _ in 0..<100_000 { raw.u32(9); raw.u64(1) }
        guard case .nestingTooDeep(key: "bomb", _)? = loadError(raw.bytes) else {
            Issue.record("expected nestingTooDeep")
            return
        }
    }

    @Test func duplicates() {
        var raw = RawGGUF()
        raw.header(tensors: 0, kvs: 2)
        raw.kvU32("k", 1)
        raw.kvU32("k", 2)
        #expect(loadError(raw.bytes) == .duplicateKey("k"))

        raw = RawGGUF()
        raw.header(tensors: 2, kvs: 0)
        raw.tensorInfo("t", dims: [4], type: 0, offset: 0)
        raw.tensorInfo("t", dims: [4], type: 0, offset: 32)
        raw.pad()
        raw.zeros(64)
        #expect(loadError(raw.bytes) == .duplicateTensor("t"))
    }

    @Test func alignmentKey() {
        for bad in [0, 48, 3, 1 << 31] as [UInt32] {
            var raw = RawGGUF()
            raw.header(tensors: 0, kvs: 1)
            raw.kvU32("general.alignment", bad)
            #expect(loadError(raw.bytes) == .badAlignment(Int(bad)))
        }
        var raw = RawGGUF()
        raw.header(tensors: 0, kvs: 1)
        raw.string("general.alignment")
        raw.u32(8)
        raw.string("32")
        #expect(loadError(raw.bytes) == .wrongValueType(key: "general.alignment", expected: "an integer (uint32)", found: "string"))
    }

    @Test func unknownTensorTypes() {
        for type: UInt32 in [4, 5, 16, 29, 77, .max] {
            #expect(loadError(oneTensorFile(type: type)) == .unknownTensorType(type, tensor: "t"))
        }
    }

    @Test func tensorDataOutOfBounds() {
        // 16 bytes of data at 64: offset 32 puts it at 96, past the 80-byte file.
        #expect(loadError(oneTensorFile(offset: 32)) == .tensorOutOfBounds(tensor: "t", offset: 96, byteCount: 16, fileSize: 80))
        // One byte short.
        #expect(loadError(oneTensorFile(dataBytes: 15)) == .tensorOutOfBounds(tensor: "t", offset: 64, byteCount: 16, fileSize: 79))
        // Offsets near 2^64 must not wrap around.
        let huge: UInt64 = .max - 31
        #expect(loadError(oneTensorFile(offset: huge)) == .tensorOutOfBounds(tensor: "t", offset: .max, byteCount: 16, fileSize: 80))
        let big: UInt64 = 1 << 63
        #expect(loadError(oneTensorFile(offset: big)) == .tensorOutOfBounds(tensor: "t", offset: big + 64, byteCount: 16, fileSize: 80))
        // A huge but valid-looking tensor.
        #expect(loadError(oneTensorFile(dims: [1 << 20, 1 << 20])) == .tensorOutOfBounds(tensor: "t", offset: 96, byteCount: 1 << 42, fileSize: 112))
    }

    @Test func misalignedTensorOffsets() {
        #expect(loadError(oneTensorFile(offset: 8)) == .misalignedTensor(tensor: "t", offset: 8, alignment: 32))
        var raw = RawGGUF()
        raw.header(tensors: 1, kvs: 1)
        raw.kvU32("general.alignment", 64)
        raw.tensorInfo("t", dims: [4], type: 0, offset: 32)
        raw.pad(to: 64)
        raw.zeros(128)
        #expect(loadError(raw.bytes) == .misalignedTensor(tensor: "t", offset: 32, alignment: 64))
    }

    @Test func badDimensions() {
        func reason(_ bytes: [UInt8]) -> String? {
            if case .badDimensions(tensor: "t", _, let reason)? = loadError(bytes) { return reason }
            return nil
        }
        #expect(reason(oneTensorFile(dims: [0])) == "dimension 0 is zero")
        #expect(reason(oneTensorFile(dims: [4, 0])) == "dimension 1 is zero")
        #expect(reason(oneTensorFile(dims: [.max])) == "dimension 0 is too large")          // "-1"
        #expect(reason(oneTensorFile(dims: [4, 1 << 63])) == "dimension 1 is too large")
        #expect(reason(oneTensorFile(dims: [1 << 32, 1 << 32])) == "the element count overflows")
        #expect(reason(oneTensorFile(dims: [1 << 30, 1 << 30, 2])) == "the byte size overflows")  // f32: 2^61 elements x 4
        #expect(reason(oneTensorFile(dims: [33], type: GGMLType.q4_0.rawValue))
                == "dimension 0 (33) is not a multiple of the Q4_0 block size 32")
        #expect(reason(oneTensorFile(dims: [128, 2], type: GGMLType.q4_K.rawValue))
                == "dimension 0 (128) is not a multiple of the Q4_K block size 256")
        for n in [0, 5, 1000] as [UInt32] {
            var raw = RawGGUF()
            raw.header(tensors: 1, kvs: 0)
            raw.string("t")
            raw.u32(n)
            raw.zeros(64)
            #expect(loadError(raw.bytes) == .badDimensionCount(tensor: "t", count: n, offset: 33))
        }
        // Through the writer, negative dimensions arrive as huge values.
        var writer = GGUFWriter()
        writer.addTensor(name: "neg", dimensions: [-1], type: .f32, data: [0, 0, 0, 0])
        guard case .badDimensions(tensor: "neg", dimensions: [UInt64.max], _)? = loadError(writer.bytes()) else {
            Issue.record("expected badDimensions")
            return
        }
    }

    @Test func descriptionsNameWhatAndWhere() {
        #expect(GGUFError.tensorOutOfBounds(tensor: "blk.0.attn_q.weight", offset: 123456, byteCount: 663552, fileSize: 1000).description
                == "GGUF: tensor 'blk.0.attn_q.weight' data [offset 123456, 663552 bytes] lies past the end of the file (size 1000)")
        let errors: [GGUFError] = [
            .io(path: "/x.gguf", message: "No such file or directory"),
            .truncated(what: "value of 'general.name'", offset: 99),
            .countTooLarge(what: "array length of 'tokens'", count: 1 << 60, offset: 41),
            .stringTooLong(length: 7, offset: 5),
            .invalidUTF8(offset: 3),
            .unknownValueType(13, key: "k", offset: 33),
            .nestingTooDeep(key: "k", offset: 1),
            .duplicateKey("k"),
            .badAlignment(48),
            .badDimensionCount(tensor: "t", count: 5, offset: 33),
            .badDimensions(tensor: "t", dimensions: [0], reason: "dimension 0 is zero"),
            .unknownTensorType(77, tensor: "t"),
            .duplicateTensor("t"),
            .misalignedTensor(tensor: "t", offset: 8, alignment: 32),
        ]
        for e in errors {
            #expect(e.description.hasPrefix("GGUF: "))
            #expect(e.description.count > 20)
        }
        #expect(GGUFError.truncated(what: "value of 'general.name'", offset: 99).description
                == "GGUF: the file ends inside the value of 'general.name' at offset 99")
    }
}
