/// A provider's name as the configuration declares it (a key under `providers:`), or `.local`, the built-in engine.
public struct ProviderID: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ name: String) { rawValue = name }
    public init(stringLiteral value: String) { rawValue = value }

    /// The built-in engine (a name configuration may not declare).
    public static let local: ProviderID = "local"
    public var isLocal: Bool { self == .local }
    public var description: String { rawValue }
    public static func < (a: ProviderID, b: ProviderID) -> Bool { a.rawValue < b.rawValue }
}

/// Where one deployment runs: `provider/model`, the name in `x-switchyard-route` and the key of its circuit breaker.
public struct DeploymentKey: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var provider: ProviderID
    public var model: String

    public init(provider: ProviderID, model: String) { self.provider = provider; self.model = model }

    /// `PROVIDER/MODEL`, split at the first slash (the model may hold more); nil without one or with an empty side.
    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let provider = String(text[..<slash]), model = String(text[text.index(after: slash)...])
        guard !provider.isEmpty, !model.isEmpty else { return nil }
        self.init(provider: ProviderID(provider), model: model)
    }

    /// A literal `provider/model`; one without a provider is a local model.
    public init(stringLiteral value: String) {
        self = DeploymentKey(parsing: value) ?? DeploymentKey(provider: .local, model: value)
    }

    public var description: String { "\(provider.rawValue)/\(model)" }
    public static func < (a: DeploymentKey, b: DeploymentKey) -> Bool { a.description < b.description }
}
