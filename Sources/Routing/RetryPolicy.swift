/// How long to wait before retrying a deployment: exponential backoff with jitter, and never less than the
/// upstream's Retry-After. A Retry-After longer than `maxRetryAfter` is not waited for: the request moves on to
/// the next deployment instead.
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt.
    public var retries: Int
    /// The wait before the first retry, doubled for each one after it, up to `maxDelay`.
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var maxRetryAfter: Duration

    public init(retries: Int, baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(4),
                maxRetryAfter: Duration = .seconds(10)) {
        self.retries = retries; self.baseDelay = baseDelay; self.maxDelay = maxDelay; self.maxRetryAfter = maxRetryAfter
    }

    /// The wait before retry number `retry` (1 for the first), or nil when there is to be no such retry.
    /// `random` is uniform in 0..<1: the wait is between half and all of the exponential step ("equal jitter").
    public func delay(beforeRetry retry: Int, retryAfter: Duration?, random: Double) -> Duration? {
        guard retry >= 1, retry <= retries else { return nil }
        if let retryAfter, retryAfter > maxRetryAfter { return nil }
        let step = min(maxDelay, baseDelay * Double(1 << min(retry - 1, 20)))
        let jittered = step * (0.5 + 0.5 * min(max(random, 0), 1))
        guard let retryAfter else { return jittered }
        return max(retryAfter, jittered)
    }
}
