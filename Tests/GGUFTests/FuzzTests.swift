import Testing
@testable import GGUF

@Suite struct FuzzTests {
    static func baseFile() -> [UInt8] {
        var rng = SplitMix64(seed: 42)
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("llama.embedding_length", .uint32(64))
        writer.set("tokenizer.ggml.tokens", .array([.string("<unk>"), .string("<s>"), .string("hello"), .string("▁wörld")]))
        writer.set("tokenizer.ggml.scores", .array([.float32(0), .float32(-1), .float32(-2.5), .float32(-3)]))
        writer.set("nested", .array([.array([.uint16(1), .uint16(2)]), .array([.uint16(3)])]))
        writer.set("flag", .bool(true))
        writer.addTensor(name: "token_embd.weight", dimensions: [32, 4], type: .q8_0, data: rng.bytes(4 * 34))
        writer.addTensor(name: "norm.weight", dimensions: [8], type: .f32, data: rng.bytes(32))
        writer.addTensor(name: "out.weight", dimensions: [32, 2], type: .q4_1, data: rng.bytes(2 * 20))
        return writer.bytes()
    }

    static let hugeValues: [UInt64] = [.max, .max - 1, 1 << 63, 1 << 62, 1 << 60, 1 << 40, 1 << 32, 0xFFFF_FFFF, 0x8000_0000, 0]

    static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        // Header, metadata and tensor infos are where parsing happens: aim there most of the time.
        func position(_ count: Int) -> Int {
            guard count > 0 else { return 0 }
            let limit = rng.next() % 4 == 0 ? count : min(count, 400)
            return Int(rng.next() % UInt64(limit))
        }
        let rounds = 1 + Int(rng.next() % 3)
        for _ in 0..<rounds {
            switch rng.next() % 7 {
            case 0:  // flip a few bytes
                for _ in 0..<(1 + Int(rng.next() % 8)) where !b.isEmpty {
                    b[position(b.count)] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            case 1:  // a huge (or random) u64
                let v = rng.next() % 3 == 0 ? rng.next() : hugeValues[Int(rng.next() % UInt64(hugeValues.count))]
                let at = position(b.count)
                for i in 0..<8 where at + i < b.count { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
            case 2:  // a small u32 (type ids, dimension counts) or a random one
                let v = rng.next() % 4 == 0 ? UInt32(truncatingIfNeeded: rng.next()) : UInt32(rng.next() % 40)
                let at = position(b.count)
                for i in 0..<4 where at + i < b.count { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            case 3:  // truncate
                b.removeSubrange(position(b.count)...)
            case 4:  // insert random bytes
                let at = position(b.count + 1)
                b.insert(contentsOf: rng.bytes(1 + Int(rng.next() % 16)), at: min(at, b.count))
            case 5:  // delete a range
                guard !b.isEmpty else { break }
                let at = position(b.count)
                let n = min(b.count - at, 1 + Int(rng.next() % 16))
                b.removeSubrange(at..<(at + n))
            default:  // duplicate a chunk (repeats keys / tensor infos)
                guard b.count > 8 else { break }
                let at = position(b.count - 8)
                let n = min(b.count - at, 8 + Int(rng.next() % 40))
                b.insert(contentsOf: b[at..<(at + n)], at: position(b.count))
            }
        }
        return b
    }

    @Test func mutatedFilesLoadOrThrow() throws {
        let base = Self.baseFile()
        let original = try GGUFFile(bytes: base)
        #expect(original.tensors.count == 3 && touchAllTensors(original))

        var rng = SplitMix64(seed: 0x5EED_1234)
        var loaded = 0, failed = 0
        var kinds: [String: Int] = [:]
        for iteration in 0..<5_000 {
            let bytes = Self.mutate(base, &rng)
            do {
                let file = try GGUFFile(bytes: bytes)
                loaded += 1
                #expect(file.fileSize == bytes.count)
                #expect(touchAllTensors(file), "iteration \(iteration): tensor data outside the file")
                #expect(file.metadataKeys.count == file.metadata.count)
                for t in file.tensors { #expect(file.tensor(named: t.name) == t) }
                _ = file.stringArray("tokenizer.ggml.tokens")
            } catch {
                failed += 1
                kinds[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(loaded > 0)
        #expect(failed > 1000)
        #expect(kinds.count > 5, "error variety: \(kinds)")
    }
}
