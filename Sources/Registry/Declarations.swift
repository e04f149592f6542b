import Core

/// An upstream declared under `providers:`.
///
/// ```yaml
/// providers:
///   upstream-a:
///     type: openai-compatible          # or anthropic, ollama, openrouter
///     base_url: http://127.0.0.1:9001/v1 # optional for anthropic, ollama and openrouter (their usual address)
///     api_key_env: A_KEY               # the key is read from this environment variable
///     headers: { X-Team: search }      # sent with every request
///     breaker: { failures: 5, window: 60s, cooldown: 30s }
///   router: { type: openrouter, api_key_env: OPENROUTER_API_KEY, free_only: true }
/// ```
public struct ProviderDeclaration: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case openAICompatible = "openai-compatible", anthropic, ollama, openrouter

        /// The address used when `base_url` is not given; nil: `base_url` is required.
        public var defaultBaseURL: String? {
            switch self {
            case .openAICompatible: nil
            case .anthropic: "https://api.anthropic.com"
            case .ollama: "http://127.0.0.1:11434"
            case .openrouter: "https://openrouter.ai/api/v1"
            }
        }
    }
    public var name: String
    /// The name as deployments refer to it.
    public var id: ProviderID { ProviderID(name) }
    public var kind: Kind
    /// Ends before the endpoint: `…/v1`, to which `/chat/completions` and `/models` are appended (anthropic: before
    /// `/v1/messages`; ollama: before `/api/chat`).
    public var baseURL: String
    public var apiKeyEnv: String?
    public var headers: [String: String]
    /// The circuit breaker of each of this provider's deployments.
    public var breaker: BreakerSettings
    /// openrouter: only models whose prompt and completion prices are both 0 are listed and served.
    public var freeOnly: Bool = false
    /// `local: true`: the upstream runs on this machine (an Ollama or llama-server on loopback, say), so
    /// local-only requests may use it like the built-in engine.
    public var local: Bool = false
    public var file: String
    public var line: Int?
}

/// When a deployment's circuit opens and for how long (see `CircuitBreaker`).
public struct BreakerSettings: Sendable, Equatable {
    /// Failures within `window` that open the circuit.
    public var failures: Int
    public var window: Duration
    /// How long an open circuit refuses requests before one probe is let through.
    public var cooldown: Duration
    public init(failures: Int = 5, window: Duration = .seconds(60), cooldown: Duration = .seconds(30)) {
        self.failures = failures; self.window = window; self.cooldown = cooldown
    }
}

/// One place a public model is served: a provider (`local` or a declared one) and the model name it knows.
public struct DeploymentDeclaration: Sendable, Equatable {
    public var provider: ProviderID
    public var model: String
    /// Longest wait for the first event, and between events (seconds); nil: the default.
    public var timeoutSeconds: Double?
    /// Retries of this deployment before moving on; nil: the default (0).
    public var retries: Int?
    /// Share of first picks under the `weighted` strategy (relative to the route's other deployments); nil: 1.
    public var weight: Double?
    /// Where it was declared, for errors found after every file was read.
    public var path: String
    public var line: Int?
    /// `provider/model`: the name in `x-switchyard-route` and the key of its circuit breaker.
    public var key: DeploymentKey { DeploymentKey(provider: provider, model: model) }

    public init(provider: ProviderID, model: String, timeoutSeconds: Double? = nil, retries: Int? = nil, path: String = "", line: Int? = nil) {
        self.provider = provider; self.model = model; self.timeoutSeconds = timeoutSeconds; self.retries = retries
        self.path = path; self.line = line
    }
}

/// How a route orders its deployments for each request; the rest of the order is the fallback chain.
public enum RoutingStrategy: String, Sendable, CaseIterable {
    /// As written: the first deployment, then the next when it fails.
    case ordered
    /// Each request starts at the next deployment.
    case roundRobin = "round-robin"
    /// The deployment with the fewest requests in flight first (ties: as written).
    case leastBusy = "least-busy"
    /// The deployment with the lowest measured time to first token first (an EWMA of its recent answers); one not
    /// measured yet goes first, so every deployment gets measured.
    case lowestLatency = "lowest-latency"
    /// The first deployment drawn at random in proportion to `weight`; the others follow as written.
    case weighted
}

/// A public model name served by deployments rather than by one local file.
///
/// ```yaml
/// models:
///   fast:
///     deployments: [ {provider: upstream-a, model: smollm2, timeout: 10s, retries: 1}, local/smollm2 ]
///     strategy: least-busy      # ordered (default), round-robin, least-busy, lowest-latency, weighted
///     fallbacks: [smart]        # other public names, tried when every deployment failed
///   mini: { model: upstream-a/gpt-4o-mini }      # one deployment, as provider/model
/// ```
public struct RouteDeclaration: Sendable, Equatable {
    public var name: String
    public var deployments: [DeploymentDeclaration]
    public var strategy: RoutingStrategy
    public var fallbacks: [String]
    public var file: String
    public var line: Int?

    public init(name: String, deployments: [DeploymentDeclaration], strategy: RoutingStrategy = .ordered,
                fallbacks: [String] = [], file: String = "", line: Int? = nil) {
        self.name = name; self.deployments = deployments; self.strategy = strategy; self.fallbacks = fallbacks
        self.file = file; self.line = line
    }
}

/// Another name for a model (or for a role, or `auto`), resolved before routing.
///
/// ```yaml
/// aliases:
///   gpt-4o: smart              # a name clients already send → a model
///   coder: role:coder          # → a role
/// models:
///   smollm2: { catalogue: smollm2, aliases: [small, tiny] }
/// ```
public struct AliasDeclaration: Sendable, Equatable {
    public var name: String
    public var target: String
    /// The model whose `aliases:` declared it (it goes when that model is declared again); nil: under `aliases:`.
    public var owner: String?
    public var file: String
    public var path: String
    public var line: Int?
}

/// What a model offers, as declared in its entry (`context:`, `tools:`, `memory:`): what roles' requirements are
/// checked against, since a remote model's abilities (and a local one's before it is loaded) are not otherwise known.
public struct ModelCapabilities: Sendable, Equatable {
    /// Context length in tokens (a local model's `context_length` counts too).
    public var context: Int?
    /// Whether it handles tool calls.
    public var tools: Bool?
    /// Memory it takes on this machine when loaded.
    public var memoryBytes: Int?
    public init(context: Int? = nil, tools: Bool? = nil, memoryBytes: Int? = nil) {
        self.context = context; self.tools = tools; self.memoryBytes = memoryBytes
    }
}

/// A role: an ordered list of preferred models and what the chosen one must offer. A request names it as
/// `role:NAME`.
///
/// ```yaml
/// roles:
///   coder:
///     prefer: [qwen-coder, fast, smollm2]
///     requires: { context: 8192, tools: true, local_only: true, max_memory: 4G }
/// ```
public struct RoleDeclaration: Sendable, Equatable {
    public struct Requirements: Sendable, Equatable {
        /// At least this context length (declared `context:` or `context_length:`).
        public var context: Int?
        /// Declared `tools: true`.
        public var tools: Bool
        /// Only local deployments (the role's plan keeps only those).
        public var localOnly: Bool
        /// A local deployment takes at most this much memory (declared `memory:` / `max_memory:`, else the
        /// model file's size estimate when the server can tell).
        public var maxMemoryBytes: Int?
        public init(context: Int? = nil, tools: Bool = false, localOnly: Bool = false, maxMemoryBytes: Int? = nil) {
            self.context = context; self.tools = tools; self.localOnly = localOnly; self.maxMemoryBytes = maxMemoryBytes
        }
    }
    public var name: String
    public var prefer: [String]
    public var requires: Requirements
    public var file: String
    public var line: Int?
    public init(name: String, prefer: [String], requires: Requirements = Requirements(), file: String = "", line: Int? = nil) {
        self.name = name; self.prefer = prefer; self.requires = requires; self.file = file; self.line = line
    }
}

/// `routing.auto`: the model each task goes to when a request names `auto`.
///
/// ```yaml
/// routing:
///   auto: { code: smollm2, general: smart, default: fast }
/// ```
public struct AutoRule: Sendable, Equatable {
    public var task: String
    public var target: String
    public var file: String
    public var line: Int?
    public init(task: String, target: String, file: String = "", line: Int? = nil) {
        self.task = task; self.target = target; self.file = file; self.line = line
    }
}
