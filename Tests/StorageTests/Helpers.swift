import Foundation
@testable import Storage

/// A database in a fresh temporary directory (which need not exist yet: opening creates it).
func temporaryDatabaseURL() -> URL {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("sy-storage-\(UUID().uuidString)", isDirectory: true)
        .appendingPathComponent("switchyard.sqlite")
}

func openTemporaryDatabase() throws -> StorageDatabase {
    try StorageDatabase(url: temporaryDatabaseURL())
}

let day: TimeInterval = 86_400
