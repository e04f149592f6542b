import Core
import Inference
import Registry

extension ModelRegistry {
    /// The local models' declarations as the model host takes them.
    public var declared: [String: ModelHost.Declared] {
        models.mapValues { d in
            ModelHost.Declared(source: d.source, contextLength: d.contextLength, threads: d.threads,
                               keepAlive: d.keepAliveSeconds.map { .milliseconds(Int64($0 * 1000)) }, maxMemoryBytes: d.maxMemoryBytes,
                               defaults: SamplingSettings(temperature: d.temperature, topP: d.topP, topK: d.topK, maxTokens: d.maxTokens),
                               adapters: d.adapters.map { AdapterSpec(path: $0.path, scale: Float($0.scale)) })
        }
    }
}
