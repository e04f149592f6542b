import ChatTemplates
import Foundation
import Testing

struct ValueTests {
    @Test func jsonSerializationBooleansStayBooleans() throws {
        let data = Data(#"{"t": true, "f": false, "one": 1, "zero": 0, "pi": 3.5, "whole": 2.0, "s": "x", "n": null, "l": [1, true]}"#.utf8)
        let object = try JSONSerialization.jsonObject(with: data)
        let value = JinjaValue(json: object)
        #expect(value["t"] == .bool(true))
        #expect(value["f"] == .bool(false))
        #expect(value["one"] == .int(1))
        #expect(value["zero"] == .int(0))
        #expect(value["pi"] == .double(3.5))
        #expect(value["s"] == .string("x"))
        #expect(value["n"] == JinjaValue.none)
        #expect(value["l"] == .array([.int(1), .bool(true)]))
        if case .double = value["whole"] {} else if case .int = value["whole"] {} else {
            Issue.record("2.0 should be a number")
        }
    }

    @Test func swiftNativeValuesConvert() {
        let value = JinjaValue(json: ["b": true, "i": 7, "d": 0.5, "a": [1, "x"]] as [String: Any])
        #expect(value["b"] == .bool(true))
        #expect(value["i"] == .int(7))
        #expect(value["d"] == .double(0.5))
        #expect(value["a"] == .array([.int(1), .string("x")]))
        #expect(JinjaValue(json: NSNull()) == JinjaValue.none)
    }

    @Test func booleansRenderLikePython() throws {
        let data = Data(#"{"flag": true, "count": 1}"#.utf8)
        let context = JinjaValue(json: try JSONSerialization.jsonObject(with: data))
        let output = try render("{{ v.flag }} {{ v.count }} {{ v.flag is boolean }} {{ v.count is boolean }}", ["v": context])
        #expect(output == "True 1 True False")
    }

    @Test func orderedJSONParserKeepsKeyOrder() throws {
        let value = try JinjaValue(jsonString: #"{"zeta": 1, "alpha": {"y": [1, 2.5, "é\n"], "b": null}, "mid": true}"#)
        guard case .object(let object) = value else {
            Issue.record("expected an object")
            return
        }
        #expect(object.keys == ["zeta", "alpha", "mid"])
        #expect(value.jsonString() == #"{"zeta": 1, "alpha": {"y": [1, 2.5, "é\n"], "b": null}, "mid": true}"#)
        let rendered = try render("{{ v | tojson }}|{% for k, x in v.items() %}{{ k }}{% endfor %}", ["v": value])
        #expect(rendered == #"{"zeta": 1, "alpha": {"y": [1, 2.5, "é\n"], "b": null}, "mid": true}|zetaalphamid"#)
    }

    @Test func jsonParserRejectsMalformedInput() {
        for text in ["{", "[1,]", "{\"a\" 1}", "tru", "\"unterminated", "[1] 2", ""] {
            #expect(throws: TemplateError.self, "input: \(text)") { try JinjaValue(jsonString: text) }
        }
        let surrogate = try? JinjaValue(jsonString: #""\ud83d\ude00""#)
        #expect(surrogate == .string("😀"))
    }

    @Test func literalsBuildValues() {
        let value: JinjaValue = ["name": "x", "n": 1, "ok": true, "list": [1, 2.5], "nothing": nil]
        guard case .object(let object) = value else {
            Issue.record("expected an object")
            return
        }
        #expect(object.keys == ["name", "n", "ok", "list", "nothing"])
        #expect(object["nothing"] == JinjaValue.none)
    }

    @Test func jsonObjectRoundTrips() throws {
        let value: JinjaValue = ["a": [1, "two", true, nil]]
        let data = try JSONSerialization.data(withJSONObject: value.jsonObject)
        #expect(JinjaValue(json: try JSONSerialization.jsonObject(with: data)) == value)
    }

    @Test func templatesAreReusableAndSendable() async throws {
        let template = try ChatTemplate(source: "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}")
        let results = await withTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask {
                    (try? template.render(["messages": [["role": "user", "content": .string("n\(index)")]]])) ?? "error"
                }
            }
            var collected: [String] = []
            for await result in group { collected.append(result) }
            return collected.sorted()
        }
        #expect(results == (0..<8).map { "user:n\($0);" }.sorted())
    }

    @Test func trimAndLstripCanBeDisabled() throws {
        let template = try ChatTemplate(source: "  {% if true %}\nx\n  {% endif %}\n", trimBlocks: false, lstripBlocks: false)
        #expect(try template.render([:]) == "  \nx\n  ")
    }
}
