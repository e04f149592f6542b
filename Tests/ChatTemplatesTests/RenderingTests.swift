import ChatTemplates
import Foundation
import Testing

/// Renders a template with the reference settings and a fixed clock (2026-01-15 10:30 UTC).
func render(_ source: String, _ context: [String: JinjaValue] = [:]) throws -> String {
    try ChatTemplate(source: source).render(context, now: fixedNow)
}

let fixedNow: Date = {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar.date(from: DateComponents(year: 2026, month: 1, day: 15, hour: 10, minute: 30))!
}()

// Expected outputs below are what Python's Jinja2 3.1 renders for the same template and context
// with trim_blocks, lstrip_blocks and transformers' tojson.

struct WhitespaceControlTests {
    @Test("trim_blocks drops the newline after a block tag; lstrip_blocks keeps indentation of text") func trimBlocks() throws {
        let output = try render("{% if true %}\n  yes\n{% endif %}\n")
        #expect(output == "  yes\n")
    }

    @Test("lstrip_blocks removes indentation before block tags") func lstripBlocks() throws {
        let output = try render("a\n    {% if true %}\nb\n    {% endif %}\nc")
        #expect(output == "a\nb\nc")
    }

    @Test("minus markers strip surrounding whitespace, including newlines") func minusMarkers() throws {
        let output = try render("  {{ 'x' }}\n  {%- if true %} y{% endif -%}  \n  z")
        #expect(output == "  x yz")
    }

    @Test("comments honour whitespace control too") func comments() throws {
        let output = try render("{# note #}\nA {#- trimmed -#} B\n  {# indented #}\nC")
        #expect(output == "AB\nC")
    }

    @Test("plus markers disable lstrip_blocks and trim_blocks") func plusMarkers() throws {
        let output = try render("  {%+ if true %}kept{% endif +%}\nnext")
        #expect(output == "  kept\nnext")
    }

    @Test("raw blocks are copied verbatim") func rawBlocks() throws {
        let output = try render("{% raw %}{{ literal }}{% endraw %}")
        #expect(output == "{{ literal }}")
    }

    @Test("CRLF is normalized and one trailing newline is dropped") func newlineNormalization() throws {
        let output = try render("line\r\nnext\n")
        #expect(output == "line\nnext")
    }
}

struct StatementTests {
    @Test("loop index, reverse index, first, last, length") func loopCounters() throws {
        let output = try render("{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}")
        #expect(output == "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|")
    }

    @Test("loop previtem, nextitem and cycle") func loopNeighbours() throws {
        let output = try render("{% for x in [1,2,3] %}{{ loop.previtem is defined }}{{ loop.previtem }}-{{ loop.nextitem }}{{ loop.cycle('o','e') }};{% endfor %}")
        #expect(output == "False-2o;True1-3e;True2-o;")
    }

    @Test("loop filter, break and continue") func loopFilterBreakContinue() throws {
        let output = try render("{% for x in range(10) if x is odd %}{% if x > 6 %}{% break %}{% endif %}{% if x == 3 %}{% continue %}{% endif %}{{ x }}{{ loop.length }},{% else %}none{% endfor %}")
        #expect(output == "15,55,")
    }

    @Test("tuple unpacking over items() in insertion order, and for-else") func itemsUnpackingAndForElse() throws {
        let output = try render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for x in [] %}{% else %}empty{% endfor %}", ["d": ["z": 1, "a": 2]])
        #expect(output == "z=1;a=2;empty")
    }

    @Test("set inside a loop does not leak out of it") func loopScope() throws {
        let output = try render("{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}")
        #expect(output == "innerouter")
    }

    @Test("recursive loops") func recursiveLoop() throws {
        let output = try render("{% for n in tree recursive %}{{ n.name }}{% if n.kids %}[{{ loop(n.kids) }}]{% endif %}{% endfor %}", ["tree": [["name": "a", "kids": [["name": "b", "kids": []]]], ["name": "c"]]])
        #expect(output == "a[b]c")
    }

    @Test("namespace attributes survive loop iterations") func namespaces() throws {
        let output = try render("{% set ns = namespace(total=0, seen=[]) %}{% for x in [1,2,3] %}{% set ns.total = ns.total + x %}{% set ns.seen = ns.seen + [x] %}{% endfor %}{{ ns.total }} {{ ns.seen }}")
        #expect(output == "6 [1, 2, 3]")
    }

    @Test("tuple unpacking and filtered block set") func setUnpackingAndBlockSet() throws {
        let output = try render("{% set a, b = 'xy' %}{{ b }}{{ a }}{% set block | upper %}shout {{ a }}{% endset %}|{{ block }}")
        #expect(output == "yx|SHOUT X")
    }

    @Test("set inside if is visible after it") func setInsideIf() throws {
        let output = try render("{% if true %}{% set leaked = 1 %}{% endif %}{{ leaked }}")
        #expect(output == "1")
    }

    @Test("macro defaults, keyword arguments and missing arguments") func macroArguments() throws {
        let output = try render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', punct='?') }} [{{ greet() }}]")
        #expect(output == "Hi Ann! Hi Bob? [Hi !]")
    }

    @Test("call blocks and caller()") func callBlock() throws {
        let output = try render("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}")
        #expect(output == "<b>bold</b>")
    }

    @Test("caller with arguments") func callerArguments() throws {
        let output = try render("{% macro row(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) row(21) %}v={{ v }}{% endcall %}")
        #expect(output == "v=42")
    }

    @Test("recursive macros") func recursiveMacro() throws {
        let output = try render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(4) }}")
        #expect(output == "4321")
    }

    @Test("filter blocks") func filterBlock() throws {
        let output = try render("{% filter upper %}abc {{ 'def' }}{% endfilter %}")
        #expect(output == "ABC DEF")
    }
}

struct ExpressionTests {
    @Test("slicing and indexing count code points and allow negative bounds") func slicing() throws {
        let output = try render("{{ s[1:3] }}|{{ s[-2:] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[-1] }}|{{ l[5] is defined }}|{{ s[1] }}", ["s": "héllo😀", "l": [1, 2, 3]])
        #expect(output == "él|o😀|😀olléh|hlo|[2, 3]|[1, 2]|3|False|é")
    }

    @Test("printing follows Python str() and repr()") func pythonPrinting() throws {
        let output = try render("{{ none }}|{{ true }}|{{ false }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ ['a', \"it's\", 1, none] }}|{{ {'k': [1.5, true]} }}|{{ ('t',) }}|{{ missing }}|{{ 3 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 8 }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}|{{ 1 ~ 'x' ~ none }}")
        #expect(output == "None|True|False|1.0|1e+20|0.30000000000000004|['a', \"it's\", 1, None]|{'k': [1.5, True]}|('t',)||1.5|3|-4|2|256|abab|[1, 2]|1xNone")
    }

    @Test("operators, conditional expressions and boolean values") func operators() throws {
        let output = try render("{{ 1 if false }}|{{ 'yes' if 1 in [1] else 'no' }}|{{ 'b' not in 'abc' }}|{{ not none }}|{{ 0 or 'fallback' }}|{{ 'first' and 'second' }}|{{ -(2 + 3) }}|{{ 10 - 2 * 3 }}|{{ (1, 2) }}")
        #expect(output == "|yes|False|True|fallback|second|-5|4|(1, 2)")
    }

    @Test("str and dict methods") func methods() throws {
        let output = try render("{{ ' x '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }}|{{ '{}-{}'.format(1, 'two') }}|{{ 'hello'.find('l') }}|{{ 'hello'.count('l') }}|{{ ', '.join(['a', 'b']) }}|{{ d.get('a') }}|{{ d.get('zz', 'none') }}|{{ d.keys()|list }}|{{ d.values()|list }}", ["d": ["a": 1, "b": 2]])
        #expect(output == "x|hi|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|True|True|1-two|2|2|a, b|1|none|['a', 'b']|[1, 2]")
    }

    @Test("Jinja tests") func jinjaTests() throws {
        let output = try render("{{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 'a' is string }}{{ d is mapping }}{{ l is sequence }}{{ l is iterable }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ true is boolean }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 2 is in l }}{{ 'A' is upper }}{{ 'a' is lower }}{{ d is callable }}{{ true is true }}{{ 0 is false }}{{ 1 is equalto 1 }}", ["x": 1, "d": [:], "l": [1, 2]])
        #expect(output == "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueFalseTrue")
    }

    @Test("strftime_now formats the given instant") func strftimeNow() throws {
        let output = try render("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y, %A %B %j %I%p %y %e') }}")
        #expect(output == "2026-01-15 10:30:00|15 Jan 2026, Thursday January 015 10AM 26 15")
    }
}

struct FilterTests {
    @Test("string and sequence filters") func stringFilters() throws {
        let output = try render("{{ '  pad  '|trim }}|{{ 'Hello'|upper }}|{{ 'Hello'|lower }}|{{ 'ab cd'|title }}|{{ 'aB'|capitalize }}|{{ 'a-a'|replace('-', '+') }}|{{ [1,2]|join(',') }}|{{ 'abc'|length }}|{{ [3,1,2]|sort|list }}|{{ [1,1,2]|unique|list }}")
        #expect(output == "pad|HELLO|hello|Ab Cd|Ab|a+a|1,2|3|[1, 2, 3]|[1, 2]")
    }

    @Test("map, select and sort by attribute") func attributeFilters() throws {
        let output = try render("{{ items|map(attribute='n')|join('/') }}|{{ items|selectattr('on')|map(attribute='n')|list }}|{{ items|rejectattr('on')|map(attribute='n')|first }}|{{ ['a','b']|map('upper')|list }}|{{ items|sort(attribute='n', reverse=true)|map(attribute='n')|list }}", ["items": [["n": "x", "on": true], ["n": "y", "on": false], ["n": "z", "on": true]]])
        #expect(output == "x/y/z|['x', 'z']|y|['A', 'B']|['z', 'y', 'x']")
    }

    @Test("default, numeric conversion and aggregation") func defaultsAndNumbers() throws {
        let output = try render("{{ missing|default('dflt') }}|{{ ''|default('empty', true) }}|{{ ''|d('kept') }}|{{ '7'|int + 1 }}|{{ '2.5'|float }}|{{ -4|abs }}|{{ 3.14159|round(2) }}|{{ [1,5,3]|max }}|{{ [1,5,3]|min }}|{{ [1,2,3]|sum }}")
        #expect(output == "dflt|empty||8|2.5|4|3.14|5|1|6")
    }

    @Test("dictsort, items, batch, escape and friends") func collectionFilters() throws {
        let output = try render("{{ {'b': 1, 'a': 2}|dictsort }}|{{ {'k': 'v'}|items|list }}|{{ 'ab'|list }}|{{ 42|string ~ '!' }}|{{ 'one two three'|wordcount }}|{{ [1,2,3,4,5]|batch(2)|list }}|{{ [1,2]|reverse|list }}|{{ '<a&b>'|e }}")
        #expect(output == "[('a', 2), ('b', 1)]|[('k', 'v')]|['a', 'b']|42!|3|[[1, 2], [3, 4], [5]]|[2, 1]|&lt;a&amp;b&gt;")
    }

    @Test("indent with Jinja 3 semantics") func indentFilter() throws {
        let output = try render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, first=true) }}|{{ 'a\n\nb'|indent(1, blank=true) }}")
        #expect(output == "a\n  b\n\n  c|  a\n  b|a\n \n b")
    }

    @Test("tojson matches json.dumps") func tojson() throws {
        let output = try render("{{ v|tojson }}\n{{ v|tojson(indent=2) }}\n{{ 'é\"<>&'|tojson }}\n{{ 'é'|tojson(ensure_ascii=true) }}\n{{ 1.0|tojson }}|{{ none|tojson }}|{{ [true, false]|tojson }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}", ["v": ["z": 1, "a": [1, 2.5, .none, "x"], "m": [:]]])
        #expect(output == "{\"z\": 1, \"a\": [1, 2.5, null, \"x\"], \"m\": {}}\n{\n  \"z\": 1,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    \"x\"\n  ],\n  \"m\": {}\n}\n\"é\\\"<>&\"\n\"\\u00e9\"\n1.0|null|[true, false]|{\"a\": 2, \"b\": 1}")
    }
}
