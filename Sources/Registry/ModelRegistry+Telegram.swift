import Foundation

/// A Telegram bot served at `POST /api/v1/webhooks/telegram/{name}`: which model answers, as whom, for which chats.
///
/// ```yaml
/// telegram:
///   support:                                  # the bot's name, in its webhook's path
///     token_env: TELEGRAM_SUPPORT_TOKEN       # the bot's token (environment, then the secrets file)
///     secret_token_env: TELEGRAM_SUPPORT_SECRET   # what Telegram sends in X-Telegram-Bot-Api-Secret-Token
///     model: smollm2                          # the default; a chat may choose another with /model
///     system: You are a helpful assistant. Answer briefly.
///     allowed_chats: [123456789, -1001234567890]  # absent: every chat
///     requests_per_minute: 10                 # per chat
///     max_tokens: 1024                        # the longest answer, in tokens
///     api_base: https://api.telegram.org      # the Bot API (a local Bot API server, or a stand-in in tests)
/// ```
public struct TelegramBotDeclaration: Sendable, Equatable {
    public var name: String
    public var tokenEnv: String = ""
    public var secretTokenEnv: String = ""
    public var model: String = ""
    public var system: String?
    public var allowedChats: [Int64]?
    public var requestsPerMinute: Int = 20
    public var maxTokens: Int = 1024
    public var apiBase: String = "https://api.telegram.org"
    public var file: String
    public var line: Int?
}

extension ModelRegistry {
    /// `telegram: { NAME: { token_env, secret_token_env, model, system, allowed_chats, requests_per_minute, max_tokens, api_base } }`.
    static func parseTelegram(_ value: ConfigValue, line: Int?, file: String, issue: Report) -> [TelegramBotDeclaration] {
        if case .null = value { return [] }
        guard case .map(let entries) = value else {
            issue("telegram", line, "expected a mapping of bot names to settings, found \(value.kind)")
            return []
        }
        var out: [TelegramBotDeclaration] = []
        for e in entries {
            let base = "telegram.\(e.key)", botLine = e.line ?? e.value.line
            // It becomes part of each chat's session name (ASCII, at most 128 characters).
            guard e.key.range(of: #"^[A-Za-z0-9._-]{1,64}$"#, options: .regularExpression) != nil else {
                issue(base, botLine, "a bot name takes 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'"); continue
            }
            guard case .map(let fields) = e.value else {
                issue(base, botLine, "expected {token_env, secret_token_env, model, …}, found \(e.value.kind)"); continue
            }
            var bot = TelegramBotDeclaration(name: e.key, file: file, line: botLine)
            for f in fields {
                let path = "\(base).\(f.key)", l = f.line ?? f.value.line ?? botLine
                let text: String? = if case .scalar(let s, _) = f.value, !s.isEmpty { s } else { nil }
                func envName() -> String? {
                    if let t = text, t.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil { return t }
                    issue(path, l, "expected the name of an environment variable (or secret), found \(f.value.kind)"); return nil
                }
                switch f.key {
                case "token_env": bot.tokenEnv = envName() ?? ""
                case "secret_token_env": bot.secretTokenEnv = envName() ?? ""
                case "model":
                    if let t = text { bot.model = t } else { issue(path, l, "expected a model name, found \(f.value.kind)") }
                case "system":
                    if let t = text { bot.system = t } else { issue(path, l, "expected a line of text, found \(f.value.kind)") }
                case "allowed_chats":
                    guard case .list(let items) = f.value else { issue(path, l, "expected a list of chat ids, found \(f.value.kind)"); continue }
                    var ids: [Int64] = []
                    for (i, item) in items.enumerated() {
                        if case .scalar(let s, _) = item, let id = Int64(s) { ids.append(id) }
                        else { issue("\(path)[\(i)]", item.line ?? l, "expected a chat id (a whole number), found \(item.kind)") }
                    }
                    bot.allowedChats = ids
                case "requests_per_minute":
                    if let t = text, let n = Int(t), (1...10_000).contains(n) { bot.requestsPerMinute = n }
                    else { issue(path, l, "expected a number of requests from 1 to 10000, found \(f.value.kind)") }
                case "max_tokens":
                    if let t = text, let n = Int(t), (1...1_000_000).contains(n) { bot.maxTokens = n }
                    else { issue(path, l, "expected a number of tokens (1 or more), found \(f.value.kind)") }
                case "api_base":
                    if let t = text, let u = URL(string: t), ["http", "https"].contains(u.scheme ?? ""), u.host != nil {
                        bot.apiBase = t.hasSuffix("/") ? String(t.dropLast()) : t
                    } else {
                        issue(path, l, "expected an http(s) URL such as https://api.telegram.org, found \(f.value.kind)")
                    }
                default:
                    issue(path, l, "unknown bot setting (expected: token_env, secret_token_env, model, system, allowed_chats, requests_per_minute, max_tokens, api_base)")
                }
            }
            for (key, missing) in [("token_env", bot.tokenEnv.isEmpty), ("secret_token_env", bot.secretTokenEnv.isEmpty), ("model", bot.model.isEmpty)] where missing {
                issue(base, botLine, "missing '\(key)'")
            }
            out.append(bot)
        }
        return out
    }
}
