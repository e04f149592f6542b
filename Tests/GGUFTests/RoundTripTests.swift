import Testing
@testable import GGUF

let sampleValues: [(String, GGUFValue)] = [
    ("general.architecture", .string("llama")),
    ("t.u8", .uint8(200)),
    ("t.i8", .int8(-100)),
    ("t.u16", .uint16(60000)),
    ("t.i16", .int16(-30000)),
    ("t.u32", .uint32(4_000_000_000)),
    ("t.i32", .int32(-2_000_000_000)),
    ("t.f32", .float32(3.25)),
    ("t.bool.true", .bool(true)),
    ("t.bool.false", .bool(false)),
    ("t.string", .string("héllo wörld ✓ 🦙")),
    ("t.string.empty", .string("")),
    ("t.u64", .uint64(.max)),
    ("t.i64", .int64(.min)),
    ("t.f64", .float64(-1e300)),
    ("t.arr.u8", .array([.uint8(0), .uint8(255)])),
    ("t.arr.i32", .array([.int32(1), .int32(-2), .int32(3)])),
    ("t.arr.f32", .array([.float32(0.5), .float32(-2), .float32(.infinity)])),
    ("t.arr.bool", .array([.bool(true), .bool(false)])),
    ("t.arr.u64", .array([.uint64(1 << 40)])),
    ("t.arr.i64", .array([.int64(-7)])),
    ("t.arr.f64", .array([.float64(2.5)])),
    ("t.arr.string", .array([.string("a"), .string(""), .string("ζ")])),
    ("t.arr.empty", .array([])),
    ("t.arr.nested", .array([
        .array([.array([.uint8(1)]), .array([])]),
        .array([.array([.string("deep")])]),
    ])),
]

/// (name, dims, type) of tensors covering scalar, 32-block and 256-block types.
let sampleTensors: [(String, [Int], GGMLType)] = [
    ("a.f32", [4, 3], .f32),
    ("b.q4_0", [64, 2], .q4_0),
    ("c.f16", [5], .f16),
    ("d.q8_0", [32, 1, 2], .q8_0),
    ("e.q4_K", [256, 1, 1, 2], .q4_K),
    ("f.i32", [3], .i32),
    ("g.bf16", [2, 2], .bf16),
    ("h.q6_K", [256], .q6_K),
]

@Suite struct RoundTripTests {
    @Test(arguments: [2, 3] as [UInt32], [32, 64, 1, 256])
    func roundTrip(version: UInt32, alignment: Int) throws {
        var rng = SplitMix64(seed: UInt64(version) << 32 | UInt64(alignment))
        var writer = GGUFWriter(version: version, alignment: alignment)
        for (k, v) in sampleValues { writer.set(k, v) }
        var payloads: [[UInt8]] = []
        for (name, dims, type) in sampleTensors {
            let size = try #require(type.byteCount(elements: dims.reduce(1, *)))
            let data = rng.bytes(size)
            payloads.append(data)
            writer.addTensor(name: name, dimensions: dims, type: type, data: data)
        }
        let bytes = writer.bytes()
        let file = try GGUFFile(bytes: bytes)

        #expect(file.version == version)
        #expect(file.alignment == alignment)
        #expect(file.fileSize == bytes.count)
        #expect(file.dataOffset % alignment == 0)
        var expectedKeys = sampleValues.map(\.0)
        if alignment != 32 { expectedKeys.append("general.alignment") }
        #expect(file.metadataKeys == expectedKeys)
        #expect(file.metadata.count == expectedKeys.count)
        for (k, v) in sampleValues { #expect(file.metadata[k] == v, "key \(k)") }
        if alignment != 32 { #expect(file.metadata["general.alignment"] == .uint32(UInt32(alignment))) }

        #expect(file.tensors.map(\.name) == sampleTensors.map(\.0))
        for (i, (name, dims, type)) in sampleTensors.enumerated() {
            let t = try #require(file.tensor(named: name))
            #expect(t == file.tensors[i])
            #expect(t.dimensions == dims)
            #expect(t.type == type)
            #expect(t.elementCount == dims.reduce(1, *))
            #expect(t.byteCount == payloads[i].count)
            #expect(t.offset % alignment == 0)
            #expect(Array(file.data(for: t)) == payloads[i])
        }
        #expect(file.tensor(named: "missing") == nil)
        // Re-serializing what was read gives the same bytes.
        var again = GGUFWriter(version: version, alignment: alignment)
        for k in file.metadataKeys { again.set(k, try #require(file.metadata[k])) }
        for t in file.tensors {
            again.addTensor(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(file.data(for: t)))
        }
        #expect(again.bytes() == bytes)
    }

    @Test func typedAccessors() throws {
        var writer = GGUFWriter()
        for (k, v) in sampleValues { writer.set(k, v) }
        writer.set("t.arr.mixedNumbers", .array([.float32(1.5), .float32(2)]))
        let file = try GGUFFile(bytes: writer.bytes())
        #expect(file.string("general.architecture") == "llama")
        #expect(file.string("t.u8") == nil)
        #expect(file.string("absent") == nil)
        #expect(file.int("t.u8") == 200)
        #expect(file.int("t.i64") == Int(Int64.min))
        #expect(file.int("t.u64") == nil)            // does not fit in Int
        #expect(file.int("t.f32") == nil)
        #expect(file.float("t.f32") == 3.25)
        #expect(file.float("t.i16") == -30000)
        #expect(file.float("t.string") == nil)
        #expect(file.bool("t.bool.true") == true)
        #expect(file.bool("t.bool.false") == false)
        #expect(file.bool("t.u8") == nil)
        #expect(file.stringArray("t.arr.string") == ["a", "", "ζ"])
        #expect(file.stringArray("t.arr.i32") == nil)
        #expect(file.stringArray("t.arr.empty") == [])
        #expect(file.intArray("t.arr.i32") == [1, -2, 3])
        #expect(file.intArray("t.arr.u8") == [0, 255])
        #expect(file.intArray("t.arr.f32") == nil)
        #expect(file.floatArray("t.arr.f32") == [0.5, -2, .infinity])
        #expect(file.floatArray("t.arr.i32") == [1, -2, 3])
        #expect(file.floatArray("t.arr.string") == nil)
        #expect(file.floatArray("t.string") == nil)
    }

    @Test func valueConveniences() {
        #expect(GGUFValue.uint32(7).intValue == 7)
        #expect(GGUFValue.int8(-3).floatValue == -3)
        #expect(GGUFValue.float64(1.5).intValue == nil)
        #expect(GGUFValue.bool(true).intValue == nil)
        #expect(GGUFValue.string("x").stringValue == "x")
        #expect(GGUFValue.array([.bool(true)]).arrayValue == [.bool(true)])
        #expect(GGUFValue.uint8(1).boolValue == nil)
    }

    @Test func typeTable() {
        #expect(GGMLType.allCases.count == 20)
        #expect(GGMLType.q4_1.name == "Q4_1")
        #expect(GGMLType.q8_K.typeSize == 292)
        #expect(GGMLType.q6_K.blockSize == 256)
        #expect(GGMLType.q8_0.byteCount(elements: 64) == 68)
        #expect(GGMLType.q8_0.byteCount(elements: 33) == nil)
        #expect(GGMLType.f32.byteCount(elements: -1) == nil)
        #expect(GGMLType.f32.byteCount(elements: Int.max) == nil)
        #expect(GGMLType.q2_K.byteCount(elements: 0) == 0)
        for t in GGMLType.allCases { #expect(GGMLType(rawValue: t.rawValue) == t && !t.name.isEmpty) }
    }

    @Test func writerKeepsFirstPositionAndConvertsMixedArrays() throws {
        var writer = GGUFWriter()
        writer.set("a", .uint8(1))
        writer.set("b", .uint8(2))
        writer.set("a", .string("again"))
        writer.set("mixed", .array([.int32(1), .float32(2.7), .string("x"), .bool(true)]))
        let file = try GGUFFile(bytes: writer.bytes())
        #expect(file.metadataKeys == ["a", "b", "mixed"])
        #expect(file.string("a") == "again")
        #expect(file.metadata["mixed"] == .array([.int32(1), .int32(2), .int32(0), .int32(1)]))
    }

    @Test func emptyFileHasNoTensors() throws {
        let file = try GGUFFile(bytes: GGUFWriter().bytes())
        #expect(file.tensors.isEmpty && file.metadata.isEmpty && file.version == 3 && file.alignment == 32)
    }
}
