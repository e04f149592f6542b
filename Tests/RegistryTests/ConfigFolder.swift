import Foundation
@testable import Registry
import Testing

/// A fresh temporary configuration folder holding `files` (relative paths; folders are made as needed).
func configFolder(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
    return dir
}

/// What loading a folder of `files` refuses, issue by issue (a test issue is recorded when it loads instead).
func configIssues(_ files: [String: String]) throws -> [ConfigIssue] {
    do {
        _ = try ModelRegistry.load(directory: try configFolder(files))
        Issue.record("expected errors")
        return []
    } catch let e as ConfigError {
        return e.issues
    }
}
