import Core
import Registry
extension RoutingStrategy {
    /// The order in which one request tries a route's deployments; what follows the first is its fallback chain.
    /// `turn` counts the route's earlier requests (round-robin); `inFlight` counts requests in flight by deployment key;
    /// `latency` is the measured time to first token by deployment key (seconds); `random` is a draw in 0..<1 (weighted).
    public func order(_ deployments: [DeploymentDeclaration], turn: Int, inFlight: [DeploymentKey: Int],
                      latency: [DeploymentKey: Double] = [:], random: Double = 0) -> [DeploymentDeclaration] {
        guard deployments.count > 1 else { return deployments }
        switch self {
        case .ordered:
            return deployments
        case .roundRobin:
            let start = ((turn % deployments.count) + deployments.count) % deployments.count
            return Array(deployments[start...] + deployments[..<start])
        case .leastBusy:
            return deployments.enumerated()
                .sorted { a, b in
                    let x = inFlight[a.element.key] ?? 0, y = inFlight[b.element.key] ?? 0
                    return x != y ? x < y : a.offset < b.offset
                }
                .map(\.element)
        case .lowestLatency:
            return deployments.enumerated()
                .sorted { a, b in
                    let x = latency[a.element.key] ?? -1, y = latency[b.element.key] ?? -1
                    return x != y ? x < y : a.offset < b.offset
                }
                .map(\.element)
        case .weighted:
            let weights = deployments.map { max(0, $0.weight ?? 1) }
            let total = weights.reduce(0, +)
            guard total > 0 else { return deployments }
            var target = min(max(random, 0), 0.999_999_999) * total
            var first = deployments.count - 1
            for (i, w) in weights.enumerated() {
                if target < w { first = i; break }
                target -= w
            }
            return [deployments[first]] + deployments.enumerated().filter { $0.offset != first }.map(\.element)
        }
    }
}
