import Foundation
@testable import Registry
import Testing

@Suite struct TelegramConfigTests {
    @Test func aBotParsesWithItsDefaults() throws {
        let registry = try ModelRegistry.load(directory: try configFolder(["models.yaml": """
            telegram:
              support:
                token_env: TG_TOKEN
                secret_token_env: TG_SECRET
                model: smollm2
                system: Be brief.
                allowed_chats: [12345, -1001234567890]
                api_base: http://127.0.0.1:9000/
              minimal: { token_env: T2, secret_token_env: S2, model: smollm2 }
            """]))
        let bot = try #require(registry.telegram["support"])
        #expect(bot.tokenEnv == "TG_TOKEN" && bot.secretTokenEnv == "TG_SECRET" && bot.model == "smollm2" && bot.system == "Be brief.")
        #expect(bot.allowedChats == [12345, -1_001_234_567_890])
        #expect(bot.apiBase == "http://127.0.0.1:9000", "the trailing slash goes")
        let minimal = try #require(registry.telegram["minimal"])
        #expect(minimal.allowedChats == nil && minimal.requestsPerMinute == 20 && minimal.maxTokens == 1024)
        #expect(minimal.apiBase == "https://api.telegram.org")
    }

    @Test func mistakesAreReportedWithTheirPath() throws {
        let found = try configIssues(["models.yaml": """
            telegram:
              a:
                token_env: "not a name"
                model: smollm2
                allowed_chats: [1, two]
                requests_per_minute: 0
                api_base: ftp://example.com
                colour: blue
              "b c": { token_env: T, secret_token_env: S, model: m }
              hilfe-bär: { token_env: T, secret_token_env: S, model: m }
            """])
        func has(_ path: String, _ text: String) -> Bool { found.contains { $0.path == path && $0.message.contains(text) } }
        #expect(has("telegram.a.token_env", "environment variable"))
        #expect(has("telegram.a", "missing 'secret_token_env'"))
        #expect(has("telegram.a.allowed_chats[1]", "chat id"))
        #expect(has("telegram.a.requests_per_minute", "1 to 10000"))
        #expect(has("telegram.a.api_base", "http(s) URL"))
        #expect(has("telegram.a.colour", "unknown bot setting"))
        #expect(has("telegram.b c", "bot name"))
        #expect(has("telegram.hilfe-bär", "bot name"), "ASCII only: it becomes part of each chat's session name")
    }
}
