import Foundation
public enum ModelResolver { public static func resolve(_ name: String) throws -> URL { URL(fileURLWithPath: name) } }
