import Grammar

/// Reads one JSON object that describes a tool call — `{"name": …, "arguments": {…}}`, with the key names of the
/// model's format — character by character, and reports each part as soon as it is known: the name when its string
/// closes, then the arguments' text as it arrives (arguments written before the name are held until the name is known;
/// arguments written as a JSON string are decoded when they close).
struct CallObjectScanner {
    enum Output: Equatable { case name(String), id(String), arguments(String) }
    enum Status: Equatable { case running, done, invalid }

    let nameKeys: Set<String>
    let argumentKeys: Set<String>
    let idKeys: Set<String>
    private(set) var status = Status.running
    /// Everything fed so far (what is shown as text when this turns out not to be a call).
    private(set) var raw = ""
    private(set) var name: String?
    private(set) var sawArguments = false

    private enum Expect { case open, key, colon, value, commaOrEnd }
    private var expect = Expect.open
    private var key = ""
    private var inKey = false
    private var keyEscaped = false
    private var currentKey = ""
    // The value being read.
    private var valueText = ""
    private var inValue = false
    private var valueDepth = 0
    private var valueInString = false
    private var valueEscaped = false
    private var valueIsString = false
    private var heldArguments = ""

    init(nameKeys: Set<String> = ["name"], argumentKeys: Set<String> = ["arguments", "parameters"], idKeys: Set<String> = ["id"]) {
        self.nameKeys = nameKeys; self.argumentKeys = argumentKeys; self.idKeys = idKeys
    }

    /// Feeds text; returns what became known. Text after the object's closing brace is not consumed: the count of
    /// scalars consumed is returned with the outputs.
    mutating func feed(_ text: Substring) -> (outputs: [Output], consumed: Int) {
        var out: [Output] = []
        var consumed = 0
        for c in text.unicodeScalars {
            guard status == .running else { break }
            consumed += 1
            raw.unicodeScalars.append(c)
            step(c, &out)
        }
        return (out, consumed)
    }

    private static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\n" || c == "\r" || c == "\t" }

    private mutating func step(_ c: Unicode.Scalar, _ out: inout [Output]) {
        if inKey {
            if keyEscaped { keyEscaped = false; key.unicodeScalars.append(c); return }
            if c == "\\" { keyEscaped = true; return }
            if c == "\"" { inKey = false; currentKey = key; expect = .colon; return }
            key.unicodeScalars.append(c)
            return
        }
        if inValue { value(c, &out); return }
        if Self.isSpace(c) { return }
        switch expect {
        case .open:
            if c == "{" { expect = .key } else { status = .invalid }
        case .key:
            if c == "\"" { inKey = true; key = "" } else if c == "}" { close() } else { status = .invalid }
        case .colon:
            if c == ":" { expect = .value } else { status = .invalid }
        case .value:
            inValue = true
            valueText = ""
            valueDepth = 0
            valueInString = false
            valueEscaped = false
            valueIsString = c == "\""
            value(c, &out)
        case .commaOrEnd:
            if c == "," { expect = .key } else if c == "}" { close() } else { status = .invalid }
        }
    }

    /// One character of a member's value; `valueDepth` counts open brackets, strings are skipped over.
    private mutating func value(_ c: Unicode.Scalar, _ out: inout [Output]) {
        let streaming = argumentKeys.contains(currentKey) && !valueIsString
        // End of a scalar value (number, true, false, null) at the top level of the value.
        if !valueIsString, valueDepth == 0, !valueText.isEmpty, !valueInString, c == "," || c == "}" || Self.isSpace(c) {
            endValue(&out)
            step(c, &out)
            return
        }
        valueText.unicodeScalars.append(c)
        if streaming { emitArguments(String(c), &out) }
        if valueInString {
            if valueEscaped { valueEscaped = false } else if c == "\\" { valueEscaped = true } else if c == "\"" {
                valueInString = false
                if valueIsString, valueDepth == 0 { endValue(&out) }
            }
            return
        }
        switch c {
        case "\"": valueInString = true
        case "{", "[": valueDepth += 1
        case "}", "]":
            valueDepth -= 1
            if valueDepth == 0 { endValue(&out) }
            if valueDepth < 0 { status = .invalid }
        default: break
        }
    }

    private mutating func endValue(_ out: inout [Output]) {
        inValue = false
        expect = .commaOrEnd
        let decoded: String? = valueIsString ? (try? OrderedJSON.parse(valueText)).flatMap { if case .string(let s) = $0 { s } else { nil } } : nil
        if nameKeys.contains(currentKey), name == nil {
            guard let decoded else { status = .invalid; return }
            name = decoded
            out.append(.name(decoded))
            if !heldArguments.isEmpty { out.append(.arguments(heldArguments)); heldArguments = "" }
        } else if idKeys.contains(currentKey), let decoded {
            out.append(.id(decoded))
        } else if argumentKeys.contains(currentKey) {
            sawArguments = true
            if valueIsString, let decoded { emitArguments(decoded, &out) }
        }
    }

    private mutating func emitArguments(_ text: String, _ out: inout [Output]) {
        sawArguments = true
        if name == nil { heldArguments += text } else { out.append(.arguments(text)) }
    }

    private mutating func close() {
        status = name == nil ? .invalid : .done
    }
}
