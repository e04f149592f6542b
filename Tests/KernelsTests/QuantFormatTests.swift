import CKernels
import Foundation
import Kernels
import Testing

/// The block formats against gguf-py, the reference implementation of GGUF's layouts: `Fixtures/<type>.weights` holds
/// rows of blocks and `Fixtures/<type>.dequantized` gguf-py's dequantization of them (tools/make_quant_fixtures.py).
@Suite struct QuantFormatTests {
    /// Row length of every fixture (tools/make_quant_fixtures.py's COLUMNS).
    static let columns = 512

    static func fixture(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        return [UInt8](try Data(contentsOf: url))
    }

    @Test(arguments: [WeightType.q5_0, .q4_K, .q5_K, .q6_K, .bf16])
    func dequantizationEqualsGGUFReference(type: WeightType) throws {
        let bytes = try Self.fixture("\(type).weights")
        let reference = try Self.fixture("\(type).dequantized")
        let rowBytes = type.rowBytes(Self.columns)
        let rows = bytes.count / rowBytes
        try #require(rows > 0 && bytes.count == rows * rowBytes, "\(type): \(bytes.count) bytes is not whole rows")
        try #require(reference.count == rows * Self.columns * 4, "\(type): reference has \(reference.count) bytes")
        var out = [Float](repeating: .nan, count: rows * Self.columns)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(type: type, rows: rows, columns: Self.columns, base: raw.baseAddress!)
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<rows { w.dequantizeRow(r, into: o.baseAddress! + r * Self.columns) }
            }
        }
        var mismatches = 0
        for i in 0..<out.count {
            let b = 4 * i
            let expected = UInt32(reference[b]) | UInt32(reference[b + 1]) << 8 | UInt32(reference[b + 2]) << 16 | UInt32(reference[b + 3]) << 24
            if out[i].bitPattern != expected {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(type) element \(i): \(out[i]) but gguf-py gives \(Float(bitPattern: expected))")
                }
            }
        }
        #expect(mismatches == 0, "\(type): \(mismatches) of \(out.count) values differ from gguf-py")
    }

    /// The fixtures themselves through every kernel level: products with the blocks gguf-py reads agree with the
    /// dequantized reference (catches a kernel that misreads a layout the same way the plain quantizers write it).
    /// The fixture's rows are repeated three times, so that both the eight-row and the one-row kernels see them.
    @Test(arguments: [WeightType.q5_0, .q4_K, .q5_K, .q6_K, .bf16])
    func fixtureProductsMatchReferenceAtEveryLevel(type: WeightType) throws {
        let fixture = try Self.fixture("\(type).weights")
        let reference = try Self.fixture("\(type).dequantized")
        let cols = Self.columns, fixtureRows = fixture.count / type.rowBytes(cols), batch = 3
        try #require(fixtureRows > 0 && reference.count == fixtureRows * cols * 4)
        let bytes = fixture + fixture + fixture, rows = 3 * fixtureRows
        let wf: [Float] = reference.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var g = Values(state: 31)
        let x = g.array(batch * cols, scale: 2)
        let scratch = QuantizedScratch(maxColumns: cols, maxRows: batch)
        let pool = ThreadPool(threadCount: 2)
        for level in [CPUKernels.Level.generic, .avx2, .avx512vnni] where level.rawValue <= CPUKernels.detected.rawValue {
            var out = [Float](repeating: 0, count: batch * rows)
            bytes.withUnsafeBytes { raw in
                let w = WeightMatrix(type: type, rows: rows, columns: cols, base: raw.baseAddress!)
                x.withUnsafeBufferPointer { xp in
                    let a = Ops.prepare(xp.baseAddress!, rows: batch, columns: cols, for: type, scratch: scratch, level: level)
                    out.withUnsafeMutableBufferPointer { Ops.matmul(w, a, into: $0.baseAddress!, pool: pool, level: level) }
                }
            }
            for r in 0..<rows {
                for c in 0..<batch {
                    var ref: Float = 0, magnitude: Float = 0
                    let fr = r % fixtureRows
                    for i in 0..<cols {
                        ref += wf[fr * cols + i] * x[c * cols + i]
                        magnitude += abs(wf[fr * cols + i] * x[c * cols + i])
                    }
                    // 8-bit activations: each term off by at most 1/254 of its block's largest activation
                    let tol: Float = type.wantsQuantizedActivations ? 0.01 * magnitude : 1e-5 * magnitude
                    #expect(abs(out[c * rows + r] - ref) <= tol, "\(type) \(level) r\(r) c\(c): \(out[c * rows + r]) vs \(ref)")
                }
            }
        }
    }

    @Test func typesAndLayouts() {
        #expect(WeightType.q4_K.blockSize == 256 && WeightType.q4_K.blockBytes == 144)
        #expect(WeightType.q5_K.rowBytes(512) == 352)
        #expect(WeightType.q6_K.rowBytes(768) == 630)
        #expect(WeightType.q5_0.rowBytes(64) == 44)
        #expect(WeightType.bf16.rowBytes(10) == 20)
        for type in [WeightType.q5_0, .q4_K, .q5_K, .q6_K] { #expect(type.wantsQuantizedActivations) }
        #expect(!WeightType.bf16.wantsQuantizedActivations)
        for type in WeightType.allCases { #expect(sy_type_supported(Int32(type.rawValue)) != 0, "\(type)") }
        // formats without kernels are refused by the C entry points, not misread
        for id: Int32 in [7, 9, 10, 11, 15, 16] {
            #expect(sy_type_supported(id) == 0)
            var out: Float = 0
            #expect(sy_dequantize_row(id, [UInt8](repeating: 0, count: 512), &out, 256) == -1)
        }
        #expect(WeightType(rawValue: 7) == nil)
        #expect(WeightType.supportedNames == "F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K, BF16")
    }
}
