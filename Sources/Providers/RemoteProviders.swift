import Core
import Registry

extension ProviderDeclaration {
    /// The adapter for this declaration, with the API key read from its `api_key_env` (nil: none is sent).
    public func makeProvider(apiKey: String?) -> any Provider {
        switch kind {
        case .openAICompatible:
            return OpenAICompatibleProvider(.init(name: name, baseURL: baseURL, apiKey: apiKey, headers: headers))
        case .anthropic:
            return AnthropicProvider(.init(name: name, baseURL: baseURL, apiKey: apiKey, headers: headers))
        case .ollama:
            return OllamaProvider(.init(name: name, baseURL: baseURL, apiKey: apiKey, headers: headers))
        case .openrouter:
            return OpenRouterProvider(.init(name: name, baseURL: baseURL, apiKey: apiKey, headers: headers), freeOnly: freeOnly)
        }
    }
}
