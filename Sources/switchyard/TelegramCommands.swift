import ArgumentParser
import Foundation
import Gateway
import Registry

struct Telegram: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The registry's Telegram bots (telegram: in models.yaml).",
        subcommands: [SetWebhook.self])

    struct SetWebhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-webhook",
            abstract: "Tell Telegram to deliver a bot's messages to this server.",
            discussion: """
                Calls the Bot API's setWebhook with URL (the server's public https address and /api/v1/webhooks/telegram/BOT) \
                and the bot's secret token, which Telegram then sends with every update. The bot's token and secret token \
                are read from the environment, then from the secrets file (switchyard secrets set NAME).
                """)
        @OptionGroup var config: ConfigLocation
        @Argument(help: "The bot's name under telegram: in the registry.") var bot: String
        @Option(help: ArgumentHelp("Where Telegram posts updates, e.g. https://bots.example.com/api/v1/webhooks/telegram/BOT.", valueName: "url"))
        var url: String
        @Flag(name: .customLong("drop-pending-updates"), help: "Drop the updates Telegram holds for the bot.")
        var dropPendingUpdates = false

        func validate() throws {
            guard let u = URL(string: url), ["http", "https"].contains(u.scheme ?? ""), u.host != nil else {
                throw ValidationError("--url '\(url)' is not an http(s) URL")
            }
        }

        func run() async throws {
            let registry: ModelRegistry
            do { registry = try config.registry() } catch let e as ConfigError { throw CLIError(e.description) }
            guard let bot = registry.telegram[bot] else {
                let known = registry.telegram.keys.sorted()
                throw CLIError("no bot '\(self.bot)' under telegram: in \(config.url.path)" + (known.isEmpty ? "" : " (declared: \(known.joined(separator: ", ")))"))
            }
            let secrets = try providerEnvironment(needing: [bot.tokenEnv, bot.secretTokenEnv])
            guard let token = secrets[bot.tokenEnv], !token.isEmpty else { throw CLIError("\(bot.tokenEnv) is set neither in the environment nor in the secrets file") }
            guard let secret = secrets[bot.secretTokenEnv], !secret.isEmpty else {
                throw CLIError("\(bot.secretTokenEnv) is set neither in the environment nor in the secrets file")
            }
            let result = try await TelegramWebhook.set(bot, token: token, secretToken: secret, url: url, dropPendingUpdates: dropPendingUpdates)
            print("telegram bot \(bot.name): webhook set to \(url) (\(result))")
        }
    }
}
