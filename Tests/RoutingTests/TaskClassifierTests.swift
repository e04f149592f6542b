import Registry
import Core
@testable import Routing
import Testing

@Suite struct TaskClassifierTests {
    struct Example: Sendable, CustomTestStringConvertible {
        let text: String
        let task: String
        let reason: String
        var testDescription: String { String(text.prefix(40)) }
    }

    static let examples: [Example] = [
        .init(text: "Can you fix this?\n```swift\nlet x = [1, 2\n```", task: "code", reason: "fenced code block"),
        .init(text: "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    main()\nKeyError: 'id'", task: "code", reason: "Python traceback"),
        .init(text: "I get this:\nTypeError: Cannot read properties of undefined (reading 'map')\n    at render (App.js:12:5)", task: "code", reason: "stack trace"),
        .init(text: "thread 'main' panicked at src/main.rs:4:5: index out of bounds", task: "code", reason: "Rust panic"),
        .init(text: "error[E0308]: mismatched types", task: "code", reason: "Rust compiler error"),
        .init(text: "main.c:10:5: error: expected ';' before 'return'", task: "code", reason: "compiler error"),
        .init(text: "Please refactor the billing module so it is easier to test.", task: "code", reason: "asks to \"refactor\""),
        .init(text: "Can you review this code for security problems? It's the login handler.", task: "code", reason: "asks to \"review this code\""),
        .init(text: "Fix this bug: the counter resets when the page reloads.", task: "code", reason: "asks to \"fix this bug\""),
        .init(text: "Write a function that returns the n-th prime.", task: "code", reason: "asks to \"write a function\""),
        .init(text: "How do I write unit tests for an async iterator?", task: "code", reason: "asks to \"unit tests\""),
        .init(text: "what's wrong here\ndef area(r):\n    return 3.14 * r ** 2", task: "code", reason: "source code"),
        .init(text: "SELECT name, total FROM orders WHERE total > 100;\nwhy is this slow", task: "code", reason: "source code"),
        .init(text: "In Python, how do I merge two dictionaries into one variable?", task: "code", reason: "mentions python and \"variable\""),
        .init(text: "What is the capital of France?", task: "general", reason: "no code signals"),
        .init(text: "Write a haiku about autumn leaves.", task: "general", reason: "no code signals"),
        .init(text: "Summarise the plot of Hamlet in three sentences.", task: "general", reason: "no code signals"),
        .init(text: "My garden's soil is heavy clay; what should I plant?", task: "general", reason: "no code signals"),
        .init(text: "Translate 'good morning' into Spanish and Italian.", task: "general", reason: "no code signals"),
        .init(text: "Give me feedback on this cover letter: I am a motivated teacher...", task: "general", reason: "no code signals"),
        .init(text: "The swift river ran past the old mill.", task: "general", reason: "no code signals"),
    ]

    @Test(arguments: examples) func classifies(_ e: Example) {
        let v = TaskClassifier.classify([ChatMessage(role: .user, content: e.text)])
        #expect(v.task == e.task, "\(e.text)")
        #expect(v.reason == e.reason, "\(e.text)")
    }

    @Test func earlierMessagesAndTheSystemPromptCount() {
        let followUp = [
            ChatMessage(role: .user, content: "```js\nconst a = 1\n```"),
            ChatMessage(role: .assistant, content: "That declares a constant."),
            ChatMessage(role: .user, content: "And what about let?"),
        ]
        #expect(TaskClassifier.classify(followUp) == .init(task: "code", reason: "earlier message: fenced code block"))
        let system = [ChatMessage(role: .system, content: "You are a coding assistant."), ChatMessage(role: .user, content: "Hello!")]
        #expect(TaskClassifier.classify(system).task == "code")
        #expect(TaskClassifier.classify([ChatMessage(role: .user, content: "Hello!")]).task == "general")
        #expect(TaskClassifier.classify([], rawPrompt: "def f(x):\n    return x + 1;").task == "code")
    }
}
