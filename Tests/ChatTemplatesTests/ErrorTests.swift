import ChatTemplates
import Foundation
import Testing

/// Renders and returns the error, failing the test if rendering succeeds.
func renderError(_ source: String, _ context: [String: JinjaValue] = [:]) -> TemplateError? {
    do {
        let output = try render(source, context)
        Issue.record("expected an error, rendered \(output.debugDescription)")
        return nil
    } catch let error as TemplateError {
        return error
    } catch {
        Issue.record("unexpected error type \(error)")
        return nil
    }
}

struct ErrorTests {
    @Test func unknownFilterNamesTheFilterAndLine() throws {
        let error = try #require(renderError("line one\n{% if true %}\n{{ x }}\n{% endif %}\n{{ 'a' | foo }}"))
        #expect(error.kind == .syntax)
        #expect(error.line == 5)
        #expect(error.description == "line 5: unknown filter 'foo'")
    }

    @Test func unknownFilterInsideIfFailsOnlyWhenReached() throws {
        #expect(try render("{% if false %}{{ x | foo }}{% endif %}ok") == "ok")
        let error = try #require(renderError("{% if true %}\n{{ x | foo }}{% endif %}"))
        #expect(error.kind == .unsupported)
        #expect(error.line == 2)
        #expect(error.message.contains("'foo'"))
    }

    @Test func unknownTestAndMethod() throws {
        let test = try #require(renderError("{{ 1 is prime }}"))
        #expect(test.message.contains("'prime'"))
        let method = try #require(renderError("\n{{ 'abc'.frobnicate() }}"))
        #expect(method.kind == .undefined)
        #expect(method.line == 2)
        #expect(method.message.contains("frobnicate"))
    }

    @Test func raiseExceptionCarriesMessageAndLine() throws {
        let source = """
        {%- for message in messages %}
        {%- if message.role not in ['user', 'assistant'] %}
        {{- raise_exception('Only user and assistant roles are supported') }}
        {%- endif %}
        {%- endfor %}
        """
        let error = try #require(renderError(source, ["messages": [["role": "system", "content": "x"]]]))
        #expect(error.kind == .raised)
        #expect(error.line == 3)
        #expect(error.message == "Only user and assistant roles are supported")
        #expect(error.description == "line 3: raise_exception: Only user and assistant roles are supported")
    }

    @Test func unterminatedTags() throws {
        for source in ["hello {{ name", "{% if x %}yes", "{% for x in y %}", "{# comment", "{% raw %}abc", "{{ 'open }}"] {
            let error = try #require(renderError(source, ["y": [1]]), "source: \(source)")
            #expect(error.kind == .syntax, "source: \(source)")
            #expect(error.line >= 1)
        }
        let error = try #require(renderError("a\nb\n{% if x %}\nc"))
        #expect(error.description.contains("endif"))
    }

    @Test func syntaxErrorsPointAtTheirLine() throws {
        let unknownTag = try #require(renderError("ok\n{% include 'x' %}"))
        #expect(unknownTag.line == 2)
        #expect(unknownTag.message.contains("include"))
        let badExpression = try #require(renderError("\n\n{{ 1 + }}"))
        #expect(badExpression.kind == .syntax)
        #expect(badExpression.line == 3)
        let breakOutsideLoop = try #require(renderError("{% break %}"))
        #expect(breakOutsideLoop.kind == .syntax)
    }

    @Test func undefinedValuesFailWhenUsed() throws {
        #expect(try render("[{{ missing }}][{{ missing is defined }}][{{ missing | length }}]") == "[][False][0]")
        let attribute = try #require(renderError("{{ missing.attr }}"))
        #expect(attribute.kind == .undefined)
        #expect(attribute.message == "'missing' is undefined")
        let arithmetic = try #require(renderError("{{ 'a' + d.nope }}", ["d": ["k": 1]]))
        #expect(arithmetic.kind == .undefined)
        #expect(arithmetic.message == "'dict object' has no attribute 'nope'")
    }

    @Test func sandboxRefusesMutation() throws {
        let append = try #require(renderError("{% set l = [] %}{% set _ = l.append(1) %}"))
        #expect(append.kind == .security)
        let update = try #require(renderError("{{ d.update({'a': 1}) }}", ["d": [:]]))
        #expect(update.kind == .security)
    }

    @Test func typeErrorsMatchPython() throws {
        let concat = try #require(renderError("{{ 'a' + d }}", ["d": ["k": 1]]))
        #expect(concat.kind == .type)
        #expect(concat.message == "can only concatenate str (not \"dict\") to str")
        let json = try #require(renderError("{{ items | map(attribute='a') | tojson }}", ["items": [["a": 1]]]))
        #expect(json.message == "Object of type generator is not JSON serializable")
        let iterate = try #require(renderError("{% for x in none %}{% endfor %}"))
        #expect(iterate.kind == .type)
    }

    @Test func recursionIsBounded() throws {
        let error = try #require(renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"))
        #expect(error.kind == .limit)
    }

    @Test func outputSizeIsBounded() throws {
        let source = "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}"
        let error = try #require(renderError(source))
        #expect(error.kind == .limit)
        let repeatError = try #require(renderError("{{ 'x' * 100000000000 }}"))
        #expect(repeatError.kind == .limit)
        let range = try #require(renderError("{{ range(10000000) | length }}"))
        #expect(range.kind == .security)
    }

    @Test func memoryBombsAreRefused() throws {
        let sources = [
            "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}",
            "{{ 'x'.center(100000000000) }}",
            "{{ 'x' | indent(100000000000) }}",
            "{{ '{:>100000000000}'.format(1) }}",
            "{{ ((['x' * 1000000]) * 100) | join }}",
            "{{ [1] * 100000000 }}",
        ]
        for source in sources {
            let error = try #require(renderError(source), "source: \(source)")
            #expect(error.kind == .limit, "source: \(source)")
        }
    }

    @Test func workIsBounded() throws {
        let source = "{% set l = range(20000) | list %}{% for i in range(100000) %}{% set s = l | sort %}{% endfor %}"
        let error = try #require(renderError(source))
        #expect(error.kind == .limit)
    }

    @Test func extremeSliceStepsDoNotOverflow() throws {
        #expect(try render("{{ 'abc'[1::9223372036854775807] }}|{{ [1, 2, 3][::-9223372036854775807] }}") == "b|[3]")
        #expect(try render("{{ range(0, 10, 9223372036854775807) | list }}") == "[0]")
    }

    @Test func deeplyNestedExpressionsAreRejected() throws {
        let parentheses = "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"
        #expect(try #require(renderError(parentheses)).kind == .syntax)
        let chain = "{{ 1" + String(repeating: " + 1", count: 5000) + " }}"
        #expect(try #require(renderError(chain)).kind == .syntax)
        let filters = "{{ 'x'" + String(repeating: " | trim", count: 5000) + " }}"
        #expect(try #require(renderError(filters)).kind == .syntax)
        let blocks = String(repeating: "{% if true %}", count: 5000) + "x" + String(repeating: "{% endif %}", count: 5000)
        #expect(try #require(renderError(blocks)).kind == .syntax)
    }

    @Test func moderateNestingRenders() throws {
        let parentheses = "{{ " + String(repeating: "(", count: 60) + "1" + String(repeating: ")", count: 60) + " }}"
        #expect(try render(parentheses) == "1")
        let chain = "{{ 0" + String(repeating: " + 1", count: 100) + " }}"
        #expect(try render(chain) == "100")
        let blocks = String(repeating: "{% if true %}", count: 60) + "x" + String(repeating: "{% endif %}", count: 60)
        #expect(try render(blocks) == "x")
    }
}
