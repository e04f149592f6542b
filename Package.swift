// swift-tools-version: 6.0
import PackageDescription

// Hot targets are compiled with -Ounchecked in every configuration that is benchmarked (release).
let hot: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Switchyard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // GGUF files: read (mmap, zero-copy, validated) and write (tests build tiny models).
        .target(name: "GGUF"),
        // Hugging Face safetensors files and sharded folders: read (mmap, zero-copy, validated).
        .target(name: "SafeTensors"),
        // Vocabularies and tokenizers.
        .target(name: "Tokenizers", dependencies: ["GGUF"]),
        // The innermost integer dot products, with AVX2 / AVX-512 VNNI paths chosen at run time.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        // Block formats, mat-vec / mat-mat, elementwise ops, the thread pool.
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: hot),
        // A Jinja interpreter for the chat templates that models ship (tokenizer.chat_template).
        .target(name: "ChatTemplates"),
        // Constrained decoding: GBNF grammars and JSON Schemas compiled to a byte-level pushdown automaton, applied as
        // token masks (cached per grammar state).
        .target(name: "Grammar", swiftSettings: hot),
        // Architectures, KV cache, sampler, generation.
        .target(name: "Inference", dependencies: ["GGUF", "SafeTensors", "Tokenizers", "Kernels", "ChatTemplates", "Grammar"], swiftSettings: hot),
        // Canonical request / event types shared by every surface and provider.
        .target(name: "Core"),
        // The model directory, the built-in catalogue and `pull`.
        .target(name: "ModelStore", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        // The local provider (loaded models on engine threads, lazy loading, bounded queues) and remote adapters over HTTP.
        .target(name: "Providers", dependencies: [
            "Core", "GGUF", "Grammar", "Inference", "Kernels", "ModelStore", "Registry", "Tokenizers",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Registry: the configuration of models and providers (models.yaml / .json, user models, profiles), validated with file, key path
        // and line; what Routing and Providers both read.
        .target(name: "Registry", dependencies: ["Core", .product(name: "Yams", package: "Yams")]),
        // Name resolution (aliases, roles, the task classifier for `auto`) and the router: deployments, strategies,
        // retries, fallbacks, circuit breakers, health probing, local-only plans.
        .target(name: "Routing", dependencies: ["Core", "Registry"]),
        // Keys and usage records: SQLite through GRDB (WAL, versioned migrations) in the data directory by default,
        // PostgreSQL through postgres-nio when a database URL is given (replicas share keys and usage).
        .target(name: "Storage", dependencies: [
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // A Redis client (RESP2 over SwiftNIO): pooled, pipelined connections for counters and the cache shared by replicas.
        .target(name: "Redis", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The HTTP server: OpenAI and native surfaces over the providers.
        .target(name: "Gateway", dependencies: [
            "Core", "Grammar", "Registry", "Providers", "Routing", "Storage", "Redis",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        .executableTarget(name: "switchyard", dependencies: [
            "GGUF", "Tokenizers", "Kernels", "Inference", "ChatTemplates", "Grammar", "Core", "ModelStore", "Registry", "Providers", "Gateway", "Routing", "Storage", "Redis",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], swiftSettings: hot),

        .target(name: "TestSupport", dependencies: ["GGUF"], path: "Tests/TestSupport"),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "GGUF", "TestSupport"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"]),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "TestSupport"]),
        // Fixtures/ (gguf-py's dequantizations, made by tools/make_quant_fixtures.py) are read through #filePath.
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "ChatTemplates", "GGUF", "Tokenizers", "Kernels", "SafeTensors", "TestSupport"]),
        .testTarget(name: "ModelStoreTests", dependencies: ["ModelStore", "TestSupport"]),
        .testTarget(name: "ProvidersTests", dependencies: [
            "Providers", "Core", "GGUF", "Grammar", "Inference", "Registry", "Routing", "ModelStore", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "Core"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Registry", "Core"]),
        // PostgreSQL cases run on SWITCHYARD_TEST_POSTGRES_URL, else on a throwaway server TestSupport starts.
        .testTarget(name: "StorageTests", dependencies: [
            "Storage", "TestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        .testTarget(name: "RedisTests", dependencies: [
            "Redis", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "Providers", "Core", "Registry", "Routing", "Storage", "Redis", "TestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
