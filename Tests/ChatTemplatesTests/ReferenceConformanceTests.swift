import ChatTemplates
import Foundation
import Testing

/// Renders every case of `Tests/Fixtures/reference/chat-templates.json` (real chat templates with the
/// output Python's Jinja2 produced, the way transformers renders them) and compares byte for byte.
struct ReferenceConformanceTests {
    static var referenceDirectory: URL {
        if let directory = ProcessInfo.processInfo.environment["SWITCHYARD_REFERENCE"] {
            return URL(fileURLWithPath: directory)
        }
        // Tests/ChatTemplatesTests/<file> → Tests → Tests/Fixtures/reference
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Fixtures/reference")
    }

    /// The instant given as `strftime_now` in the context defaults, e.g. `2026-01-15T10:30`.
    static func parseInstant(_ text: String) -> Date? {
        let parts = text.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
        guard parts.count >= 5 else { return nil }
        var components = DateComponents()
        components.year = parts[0]
        components.month = parts[1]
        components.day = parts[2]
        components.hour = parts[3]
        components.minute = parts[4]
        components.second = parts.count > 5 ? parts[5] : 0
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: components)
    }

    /// The Python exception class Jinja2 raises for each kind of error.
    static func pythonExceptionName(_ kind: TemplateError.Kind) -> String {
        switch kind {
        case .syntax: return "TemplateSyntaxError"
        case .undefined: return "UndefinedError"
        case .type: return "TypeError"
        case .security: return "SecurityError"
        case .raised: return "TemplateError"
        case .unsupported: return "unsupported"
        case .limit: return "limit"
        case .runtime: return "TemplateRuntimeError"
        }
    }

    /// Describes where two strings first differ, with some context.
    static func firstDifference(_ actual: String, _ expected: String) -> String {
        let a = Array(actual.unicodeScalars)
        let e = Array(expected.unicodeScalars)
        var index = 0
        while index < a.count, index < e.count, a[index] == e[index] { index += 1 }
        func excerpt(_ scalars: [Unicode.Scalar]) -> String {
            let start = max(0, index - 60)
            let end = min(scalars.count, index + 60)
            guard start < end else { return "«»" }
            let text = String(String.UnicodeScalarView(scalars[start..<end]))
            return "«" + text.replacingOccurrences(of: "\n", with: "⏎") + "»"
        }
        return "first difference at scalar \(index) (lengths \(a.count) vs \(e.count))\n"
            + "      got:      \(excerpt(a))\n      expected: \(excerpt(e))"
    }

    @Test func everyReferenceCaseMatches() throws {
        let url = Self.referenceDirectory.appendingPathComponent("chat-templates.json")
        let data = try Data(contentsOf: url)
        guard case .array(let entries) = try JinjaValue(jsonData: data) else {
            Issue.record("chat-templates.json is not a list")
            return
        }
        var expectedTotal = 0
        var expectedMatched = 0
        var errorTotal = 0
        var errorRaised = 0
        var failures: [String] = []
        var templatesLoaded = 0

        for entry in entries {
            guard case .string(let name)? = entry["template_name"],
                case .string(let source)? = entry["template"],
                case .object(let conversations)? = entry["conversations"],
                case .array(let cases)? = entry["cases"]
            else {
                Issue.record("malformed entry")
                continue
            }
            var defaults: [String: JinjaValue] = [:]
            var now = Date()
            if case .object(let contextDefaults)? = entry["context_defaults"] {
                for (key, value) in contextDefaults {
                    if key == "strftime_now", case .string(let instant) = value, let date = Self.parseInstant(instant) {
                        now = date
                    } else {
                        defaults[key] = value
                    }
                }
            }
            let template: ChatTemplate
            do {
                template = try ChatTemplate(source: source)
                templatesLoaded += 1
            } catch {
                for item in cases {
                    if item["error"] != nil { errorTotal += 1 } else { expectedTotal += 1 }
                }
                failures.append("\(name): template failed to parse: \(error)")
                continue
            }
            for item in cases {
                guard case .string(let caseName)? = item["case"],
                    case .bool(let addGenerationPrompt)? = item["add_generation_prompt"],
                    case .object(let conversation)? = conversations[caseName]
                else {
                    Issue.record("malformed case in \(name)")
                    continue
                }
                var context = defaults
                for (key, value) in conversation { context[key] = value }
                context["add_generation_prompt"] = .bool(addGenerationPrompt)
                let label = "\(name) [\(caseName), add_generation_prompt=\(addGenerationPrompt)]"

                if case .string(let expected)? = item["expected"] {
                    expectedTotal += 1
                    do {
                        let output = try template.render(context, now: now)
                        if output == expected {
                            expectedMatched += 1
                        } else {
                            failures.append("\(label): \(Self.firstDifference(output, expected))")
                        }
                    } catch {
                        failures.append("\(label): unexpected error: \(error)")
                    }
                } else if case .string(let expectedError)? = item["error"] {
                    errorTotal += 1
                    do {
                        let output = try template.render(context, now: now)
                        failures.append("\(label): expected \(expectedError), rendered \(output.count) characters")
                    } catch {
                        if Self.pythonExceptionName(error.kind) == expectedError {
                            errorRaised += 1
                        } else {
                            failures.append("\(label): expected \(expectedError), got \(error.kind) error: \(error)")
                        }
                    }
                }
            }
        }
        for failure in failures { print("MISMATCH \(failure)") }
        print("chat templates: \(expectedMatched)/\(expectedTotal) expected identical, \(errorRaised)/\(errorTotal) errors raised (\(templatesLoaded) templates)")
        #expect(failures.isEmpty)
        #expect(expectedTotal + errorTotal > 0)
        #expect(expectedMatched == expectedTotal)
        #expect(errorRaised == errorTotal)
    }
}
