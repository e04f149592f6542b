import Core
import Registry
import Foundation

/// Tells code work (writing, reviewing, debugging) from general conversation, for `auto`: a fixed set of
/// deterministic signals, checked in order, the first found giving the reason.
///
/// 1. a fenced code block (```),
/// 2. a stack trace or compiler/runtime error output (`Traceback (most recent call last)`, `at f (file.js:3:7)`,
///    `panicked at`, `error[E0308]`, `TypeError: …`, `Segmentation fault`, …),
/// 3. a request phrased as code work ("refactor", "fix this bug", "review this code", "write a function",
///    "unit test", "stack trace", …),
/// 4. source code pasted without a fence: a line that can only be code (`def f(x):`, `#include <…>`,
///    `SELECT … FROM …`, `func f(…)`), or two lines that look like it (`return x;`, lines ending in `{` or `;`),
/// 5. a programming language named together with a code noun ("in Python … function", "a Rust crate").
///
/// The last user message is read first (or a raw prompt); failing that, a fence or a stack trace in an earlier
/// message, or a system prompt that sets up a coding assistant, still makes it code.
public enum TaskClassifier {
    public struct Verdict: Sendable, Equatable {
        /// `code` or `general`.
        public var task: String
        /// What decided it, for `x-switchyard-route-reason`.
        public var reason: String
    }

    public static func classify(_ messages: [ChatMessage], rawPrompt: String? = nil) -> Verdict {
        if let rawPrompt {
            if let why = signal(in: rawPrompt) { return Verdict(task: "code", reason: why) }
            return Verdict(task: "general", reason: "no code signals")
        }
        let lastUser = messages.lastIndex { $0.role == .user }
        if let i = lastUser, let why = signal(in: messages[i].content) { return Verdict(task: "code", reason: why) }
        for (i, m) in messages.enumerated().reversed() where i != lastUser && m.role != .system {
            if let why = strongSignal(in: m.content) { return Verdict(task: "code", reason: "earlier message: \(why)") }
        }
        if let system = messages.first(where: { $0.role == .system }), matches(system.content, systemPhrases) != nil {
            return Verdict(task: "code", reason: "system prompt sets up a coding assistant")
        }
        return Verdict(task: "general", reason: "no code signals")
    }

    /// The first code signal in `text`, described.
    static func signal(in text: String) -> String? {
        if let strong = strongSignal(in: text) { return strong }
        let lower = text.lowercased()
        if let phrase = matches(lower, codePhrases) { return "asks to \"\(phrase)\"" }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        if lines.contains(where: isDefinitelyCode) || lines.filter(looksLikeCode).count >= 2 { return "source code" }
        if let language = matches(lower, languages), let noun = matches(lower, codeNouns) {
            return "mentions \(language) and \"\(noun)\""
        }
        return nil
    }

    /// A fence or an error trace: signals strong enough to count from any message.
    static func strongSignal(in text: String) -> String? {
        if text.contains("```") { return "fenced code block" }
        for (pattern, what) in tracePatterns where text.range(of: pattern, options: .regularExpression) != nil { return what }
        return nil
    }

    static let tracePatterns: [(String, String)] = [
        (#"Traceback \(most recent call last\)"#, "Python traceback"),
        (#"(?m)^\s*File "[^"]+", line \d+"#, "Python traceback"),
        (#"(?m)^\s+at [\w$.<>\[\]/]+ ?\(?[^()\s]*:\d+(:\d+)?\)?\s*$"#, "stack trace"),
        (#"Exception in thread ""#, "Java stack trace"),
        (#"panicked at "#, "Rust panic"),
        (#"error\[E\d{4}\]"#, "Rust compiler error"),
        (#"(?m)^\s*(Uncaught )?\w*(Error|Exception): \S"#, "error output"),
        (#"Segmentation fault|core dumped|Fatal error: "#, "crash output"),
        (#"(?m)^\S+\.(c|cc|cpp|h|swift|go|rs|ts|js|py|java|kt):\d+(:\d+)?: (error|warning)"#, "compiler error"),
        (#"undefined reference to `"#, "linker error"),
    ]

    static let codePhrases = [
        "refactor", "fix this bug", "fix the bug", "fix a bug", "fix my code", "fix this code", "debug", "review this code",
        "review my code", "code review", "review this function", "review this pr", "pull request", "write a function",
        "write a script", "write a program", "write code", "unit test", "unit tests", "stack trace",
        "compile error", "compiler error", "syntax error", "type error", "segfault", "null pointer", "regex",
        "regular expression", "this function", "this method", "this snippet", "this code", "my code", "debugging",
        "time complexity", "big-o", "off-by-one", "race condition", "memory leak", "sql query", "api endpoint",
    ]

    static let systemPhrases = ["coding assistant", "programming assistant", "software engineer", "code reviewer", "you write code", "expert programmer"]

    static let languages = [
        "python", "javascript", "typescript", "java", "kotlin", "swift", "rust", "golang", "c++", "c#", "ruby",
        "php", "haskell", "scala", "bash", "shell script", "powershell", "sql", "html", "css", "node.js",
    ]

    static let codeNouns = [
        "function", "method", "class", "script", "code", "program", "compile", "library", "crate", "package", "module",
        "variable", "loop", "array", "exception", "bug", "query", "struct", "interface", "endpoint", "api",
    ]

    /// The first of `phrases` found in `text` as whole words.
    static func matches(_ text: String, _ phrases: [String]) -> String? {
        let lower = text.lowercased()
        for p in phrases {
            var from = lower.startIndex
            while let r = lower.range(of: p, range: from..<lower.endIndex) {
                let before = r.lowerBound == lower.startIndex ? nil : lower[lower.index(before: r.lowerBound)]
                let after = r.upperBound == lower.endIndex ? nil : lower[r.upperBound]
                func boundary(_ c: Character?) -> Bool { c.map { !$0.isLetter && !$0.isNumber } ?? true }
                if boundary(before) && boundary(after) { return p.trimmingCharacters(in: .whitespaces) }
                from = r.upperBound
            }
        }
        return nil
    }

    static let definiteCodeLinePatterns = [
        #"^\s*def \w+\(.*\)\s*(->.*)?:\s*$"#,
        #"^\s*class \w+(\(.*\))?\s*[:{]\s*$"#,
        #"^\s*(pub )?(func|fn|function) \w+\s*(<.*>)?\(.*\)"#,
        #"^\s*#include\s*[<"]"#,
        #"^\s*from\s+[\w.]+\s+import\s+[\w*, ]+$"#,
        #"(?i)^\s*(select\s+.+\s+from\s+\w+|insert\s+into\s+\w+|update\s+\w+\s+set\s+\w+|create\s+table\s+\w+|delete\s+from\s+\w+)"#,
    ]

    static func isDefinitelyCode(_ line: String) -> Bool {
        definiteCodeLinePatterns.contains { line.range(of: $0, options: .regularExpression) != nil }
    }

    static let codeLinePatterns = [
        #"^\s*(def|class|fn|func|function|struct|enum|impl|interface|package|import)\s+\w+.*[:{(;]"#,
        #"^\s*(public|private|protected|static|const|let|var|val|auto|int|void|return)\b.*[;={(]"#,
        #"^\s*(if|for|while|switch)\s*\(.*\)\s*\{?\s*$"#,
        #"(?i)^\s*(select\s+.+\s+from|insert\s+into|update\s+\w+\s+set|create\s+table|delete\s+from)\b"#,
        #"[;{}]\s*$"#,
        #"^\s*\w+(\.\w+)*\(.*\)\s*;?\s*$"#,
        #"=>|->|::|\+=|!==|==="#,
    ]

    static func looksLikeCode(_ line: String) -> Bool {
        codeLinePatterns.contains { line.range(of: $0, options: .regularExpression) != nil }
    }
}
