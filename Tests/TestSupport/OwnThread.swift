import Foundation

/// Runs `body` on a thread of its own and returns its value to the calling task. Long synchronous work in a test
/// (a model's forward passes for minutes) would otherwise hold a thread of the cooperative pool — two on a two-core
/// machine — and starve the tests that wait on timers or on connection pools meanwhile. Assertions stay on the task.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
