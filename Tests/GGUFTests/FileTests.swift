import Foundation
import Testing
import TestSupport
@testable import GGUF

@Suite struct FileTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func mappedFileMatchesWhatWasWritten() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 7)
        var writer = GGUFWriter(alignment: 64)
        writer.set("general.architecture", .string("llama"))
        writer.set("tokens", .array([.string("a"), .string("b")]))
        let payloads = [rng.bytes(4 * 34), rng.bytes(40), rng.bytes(144)]
        writer.addTensor(name: "a", dimensions: [32, 4], type: .q8_0, data: payloads[0])
        writer.addTensor(name: "b", dimensions: [10], type: .f32, data: payloads[1])
        writer.addTensor(name: "c", dimensions: [256], type: .q4_K, data: payloads[2])
        let path = dir.appendingPathComponent("model.gguf").path
        try writer.write(to: path)

        let file = try GGUFFile(path: path)
        #expect(file.fileSize == writer.bytes().count)
        #expect(file.alignment == 64)
        #expect(file.string("general.architecture") == "llama")
        #expect(file.stringArray("tokens") == ["a", "b"])
        #expect(file.tensors.map(\.name) == ["a", "b", "c"])
        for (t, payload) in zip(file.tensors, payloads) {
            let data = file.data(for: t)
            #expect(Array(data) == payload)
            #expect(Int(bitPattern: data.baseAddress) % 64 == 0)   // page-aligned mapping + aligned offsets
        }
        // Byte-for-byte what the writer produced.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(writer.bytes()))
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent-dir-\(UUID().uuidString)/model.gguf"
        do {
            _ = try GGUFFile(path: path)
            Issue.record("opened a missing file")
        } catch {
            guard case .io(path: path, let message) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(message.contains("No such file"))
            #expect(error.description.contains(path))
        }
    }

    @Test func directoriesEmptyFilesAndBadFiles() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: GGUFError.io(path: dir.path, message: "not a regular file")) { try GGUFFile(path: dir.path) }

        let empty = dir.appendingPathComponent("empty.gguf").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(throws: GGUFError.truncated(what: "magic", offset: 0)) { try GGUFFile(path: empty) }

        let bad = dir.appendingPathComponent("bad.gguf").path
        #expect(FileManager.default.createFile(atPath: bad, contents: Data(oneTensorFile(offset: 32))))
        #expect(throws: GGUFError.tensorOutOfBounds(tensor: "t", offset: 96, byteCount: 16, fileSize: 80)) {
            try GGUFFile(path: bad)
        }

        let unwritable = dir.appendingPathComponent("no/such/dir.gguf").path
        #expect(throws: GGUFError.self) { try GGUFWriter().write(to: unwritable) }
    }

    /// Tensors written as they are produced: the file equals the one `bytes()` builds, and a tensor of another length
    /// than declared stops the write with nothing left at the path.
    @Test func streamedWriteEqualsTheBufferedOne() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data: [[UInt8]] = [Array(repeating: 1, count: 12), (0..<40).map(UInt8.init)]
        var buffered = GGUFWriter()
        buffered.set("general.architecture", .string("llama"))
        buffered.addTensor(name: "a", dimensions: [3], type: .f32, data: data[0])
        buffered.addTensor(name: "b", dimensions: [5, 2], type: .f32, data: data[1])
        var streamed = GGUFWriter()
        streamed.set("general.architecture", .string("llama"))
        let pending = [GGUFWriter.PendingTensor(name: "a", dimensions: [3], type: .f32, byteCount: 12),
                       GGUFWriter.PendingTensor(name: "b", dimensions: [5, 2], type: .f32, byteCount: 40)]
        let path = dir.appendingPathComponent("s.gguf").path
        try streamed.write(to: path, pending: pending) { (i: Int) throws(GGUFError) -> [UInt8] in data[i] }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(buffered.bytes()))
        #expect(try GGUFFile(path: path).tensor(named: "b")?.dimensions == [5, 2])

        let short = dir.appendingPathComponent("short.gguf").path
        #expect(throws: GGUFError.io(path: short + ".\(getpid()).partial", message: "tensor b has 3 bytes, 40 were declared")) {
            try streamed.write(to: short, pending: pending) { (i: Int) throws(GGUFError) -> [UInt8] in i == 0 ? data[0] : [1, 2, 3] }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["s.gguf"], "no file and no partial file left")
    }

    @Test func foreignTensorInfoGivesEmptyBuffer() throws {
        var big = GGUFWriter()
        big.addTensor(name: "w", dimensions: [1024], type: .f32, data: Array(repeating: 0, count: 4096))
        let bigFile = try GGUFFile(bytes: big.bytes())
        let small = try GGUFFile(bytes: oneTensorFile())
        let foreign = try #require(bigFile.tensor(named: "w"))
        #expect(small.data(for: foreign).isEmpty)
    }

    @Test func smolLM2() throws {
        let path = try Reference.smolLM2()
        let clock = ContinuousClock()
        var opened: GGUFFile?
        let elapsed = try clock.measure { opened = try GGUFFile(path: path) }
        let file = try #require(opened)
        #expect(elapsed < .seconds(10), "opening took \(elapsed)")  // mapped, not read: far below this
        #expect(file.version == 3)
        #expect(file.tensors.count == 272)
        #expect(file.metadata.count == 33 && file.metadataKeys.count == 33)
        #expect(file.string("general.architecture") == "llama")
        #expect(file.int("llama.embedding_length") == 576)
        let tokens = try #require(file.stringArray("tokenizer.ggml.tokens"))
        #expect(tokens.count == 49152)
        let embd = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embd.type == .q8_0)
        #expect(embd.dimensions == [576, 49152])
        #expect(embd.byteCount == 576 * 49152 / 32 * 34)
        #expect(file.dataOffset % file.alignment == 0)
        #expect(touchAllTensors(file))
        // The tensors tile the data section in order, each padded to the alignment, up to the end of the file.
        var expected = 0
        for t in file.tensors {
            #expect(t.offset == expected, "\(t.name)")
            expected = (t.offset + t.byteCount + file.alignment - 1) / file.alignment * file.alignment
        }
        #expect(file.dataOffset + expected == file.fileSize)
    }
}
