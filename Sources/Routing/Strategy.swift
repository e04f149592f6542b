extension RoutingStrategy {
    /// The order in which one request tries a route's deployments; what follows the first is its fallback chain.
    /// `turn` counts the route's earlier requests (round-robin); `inFlight` counts requests in flight by deployment key.
    public func order(_ deployments: [DeploymentDeclaration], turn: Int, inFlight: [String: Int]) -> [DeploymentDeclaration] {
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
        }
    }
}
