import GGUF
// TEMPORARY stub with the agreed API.
public protocol Tokenizer: Sendable {
  var vocabularySize: Int { get }; var bosTokenID: Int32? { get }; var eosTokenID: Int32? { get }; var addBOS: Bool { get }
  func encode(_ text: String, parseSpecial: Bool) -> [Int32]; func tokenBytes(_ id: Int32) -> [UInt8]; func decode(_ ids: [Int32]) -> String
  func isEndOfGeneration(_ id: Int32) -> Bool; func tokenID(for text: String) -> Int32?
}
public enum TokenizerFactory { public static func load(from file: GGUFFile) throws -> any Tokenizer { throw GGUFError.io(path: "", message: "") } }
public struct StreamingDetokenizer: Sendable { public init(tokenizer: any Tokenizer) {}; public mutating func append(_ id: Int32) -> String { "" }; public mutating func flush() -> String { "" } }
