import Core
import Registry

/// Requests the router refuses before any deployment is tried.
public enum RoutingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A role's preferred model that did not qualify, and why.
    public struct PassedOver: Sendable, Equatable {
        public var model: String
        public var reasons: [String]
        public init(model: String, reasons: [String]) { self.model = model; self.reasons = reasons }
    }

    /// No preferred model of the role meets its requirements (or the request's local-only).
    case roleUnmet(role: String, requirements: String, passedOver: [PassedOver])
    /// A local-only request for a model that only remote deployments serve.
    case noLocalDeployment(model: String, deployments: [String])
    /// The configuration leads nowhere (a loop the configuration check could not see).
    case misconfigured(String)

    public var description: String {
        switch self {
        case .roleUnmet(let role, let requirements, let passed):
            let why = passed.map { "\($0.model): \($0.reasons.joined(separator: ", "))" }.joined(separator: "; ")
            return "no model meets role '\(role)'" + (requirements.isEmpty ? "" : " (requires \(requirements))")
                + (passed.isEmpty ? ": it prefers no model" : " — passed over \(why)")
        case .noLocalDeployment(let model, let deployments):
            return "the request is local-only, but no local deployment serves '\(model)'"
                + (deployments.isEmpty ? "" : " (its deployments: \(deployments.joined(separator: ", ")))")
        case .misconfigured(let m): return m
        }
    }
}
