import Registry
import Foundation
@testable import Routing
import Testing

/// The profiles shipped in config/profiles load, merge and resolve.
@Suite struct ShippedProfileTests {
    @Test func theShippedProfilesMergeCleanly() throws {
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config")
        let names = ModelRegistry.profileNames(in: ModelRegistry.defaultProfilesDirectory(for: config))
        #expect(names.contains("coding") && names.contains("local"))
        for name in names {
            let r = try ModelRegistry.load(directory: config, profile: name)
            #expect(r.profile == name && r.models["smollm2"] != nil)
        }
        let coding = try ModelRegistry.load(directory: config, profile: "coding")
        #expect(coding.models["smollm2"]?.temperature == 0.2 && coding.models["smollm2"]?.source == "smollm2")
        #expect(try coding.resolve(.init(model: "coder", messages: [])).models == ["smollm2"])
    }
}
