import Foundation
import SafeTensors
import Testing

/// The safetensors reader on files built here: what a good file holds, and a typed error (never a crash, never a read
/// outside the file) for each way a file can be broken.
@Suite struct SafeTensorsFileTests {
    /// A file: 8-byte little-endian header length, the header, the data.
    static func file(header: String, data: [UInt8], claimedLength: UInt64? = nil) throws -> String {
        let h = Array(header.utf8)
        var bytes = [UInt8]()
        let n = claimedLength ?? UInt64(h.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        bytes += h + data
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func floats(_ v: [Float]) -> [UInt8] { v.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } } }

    @Test func readsTensorsInPlace() throws {
        let header = #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]}}"#
        let path = try Self.file(header: header, data: Self.floats([1, 2, 3, 4, 5, 6]) + [0, 0x3C, 0, 0xC0])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt"])
        let w = try #require(f.tensors["w"])
        #expect(w.shape == [2, 3])
        #expect(w.type == .f32)
        let p = f.data(w)
        #expect((0..<6).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } == [1, 2, 3, 4, 5, 6])
        #expect(f.tensors["b"]?.type == .f16)
        #expect(f.tensors["b"]?.byteCount == 4)
    }

    @Test func brokenFilesGiveTypedErrors() throws {
        func check(_ header: String, data: [UInt8] = [], claimed: UInt64? = nil, _ expected: (String) -> SafeTensorsError) throws {
            let path = try Self.file(header: header, data: data, claimedLength: claimed)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(throws: expected(path)) { try SafeTensorsFile(path: path) }
        }
        try check("{}", claimed: 1 << 40) { .badHeader(path: $0, reason: "the header claims 1099511627776 bytes (at most 100000000 are read)") }
        try check("{}", claimed: 5000) { .truncated(path: $0, needed: 5008, size: 10) }
        try check("[1,2]") { .badHeader(path: $0, reason: "not a JSON object") }
        try check(#"{"w":{"dtype":"F32","shape":[2]}}"#) { .badHeader(path: $0, reason: "entry w lacks dtype, shape or a pair of data_offsets") }
        try check(#"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)) {
            .unsupportedType(path: $0, tensor: "w", dtype: "C64")
        }
        try check(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8)) {
            .badTensor(path: $0, tensor: "w", reason: "data_offsets [0, 16] are outside the 8-byte data section")
        }
        try check(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)) {
            .badTensor(path: $0, tensor: "w", reason: "8 bytes for shape [3] of F32 (12 expected)")
        }
        try check(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#) {
            .badTensor(path: $0, tensor: "w", reason: "shape [-1] has a bad dimension")
        }
    }

    @Test func aShortFileAndAFolderWithoutWeights() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: SafeTensorsError.truncated(path: path, needed: 8, size: 3)) { try SafeTensorsFile(path: path) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"weight_map":{"a":"../x.safetensors"}}"#.utf8).write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        #expect(throws: SafeTensorsError.badIndex(path: folder.appendingPathComponent("model.safetensors.index.json").path,
                                                  reason: "shard name '../x.safetensors' is not a file name in the folder")) {
            try SafeTensorsFolder(folder: folder)
        }
    }

    /// Sharded weights: the index's shards, each tensor found in its own.
    @Test func shardsThroughTheIndex() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (shard, name, value) in [("model-00001-of-00002.safetensors", "a", Float(1.5)), ("model-00002-of-00002.safetensors", "b", Float(-2))] {
            let p = try Self.file(header: #"{"\#(name)":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floats([value]))
            try FileManager.default.moveItem(atPath: p, toPath: folder.appendingPathComponent(shard).path)
        }
        try Data(#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#.utf8)
            .write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        let weights = try SafeTensorsFolder(folder: folder)
        #expect(weights.tensorNames == ["a", "b"])
        #expect(weights.data("b")?.pointer.loadUnaligned(as: Float.self) == -2)
        #expect(weights.data("c") == nil)
    }
}
