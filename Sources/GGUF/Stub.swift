// TEMPORARY stub with the agreed API, replaced by the real reader.
public enum GGMLType: UInt32, Sendable, CaseIterable { case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8
  public var name: String { "\(self)" } }
public indirect enum GGUFValue: Sendable, Equatable { case string(String), array([GGUFValue]) }
public struct GGUFTensorInfo: Sendable { public let name: String; public let dimensions: [Int]; public let type: GGMLType; public let offset: Int; public let byteCount: Int; public var elementCount: Int { dimensions.reduce(1, *) } }
public enum GGUFError: Error, Sendable { case io(path: String, message: String) }
public final class GGUFFile: @unchecked Sendable {
  public init(path: String) throws(GGUFError) { throw .io(path: path, message: "stub") }
  public let fileSize = 0
  public func tensor(named: String) -> GGUFTensorInfo? { nil }
  public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }
  public func string(_ key: String) -> String? { nil }
  public func int(_ key: String) -> Int? { nil }
  public func float(_ key: String) -> Double? { nil }
}
