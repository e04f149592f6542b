/// Python `str` operations. Positions and lengths count Unicode scalars (Python code points),
/// and substring matching works on UTF-8 bytes, never on Swift `Character`s, so that for example
/// `"\n" in "\r\n"` holds as it does in Python.
enum PythonString {
    /// Python's `str.isspace()` for one character.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    // MARK: Stripping

    static func strip(_ text: String, _ characters: String? = nil) -> String {
        rstrip(lstrip(text, characters), characters)
    }

    static func lstrip(_ text: String, _ characters: String? = nil) -> String {
        let scalars = text.unicodeScalars
        let strip = stripPredicate(characters)
        guard let first = scalars.firstIndex(where: { !strip($0) }) else { return "" }
        return String(scalars[first...])
    }

    static func rstrip(_ text: String, _ characters: String? = nil) -> String {
        let scalars = text.unicodeScalars
        let strip = stripPredicate(characters)
        guard let last = scalars.lastIndex(where: { !strip($0) }) else { return "" }
        return String(scalars[...last])
    }

    /// Which characters `strip(chars)` removes: the given ones, or whitespace when `nil`.
    private static func stripPredicate(_ characters: String?) -> (Unicode.Scalar) -> Bool {
        guard let characters else { return isWhitespace }
        let set = Set(characters.unicodeScalars)
        return { set.contains($0) }
    }

    // MARK: Searching

    /// Byte offsets of non-overlapping occurrences of `needle` in `haystack`.
    static func occurrences(of needle: [UInt8], in haystack: [UInt8], limit: Int = Int.max) -> [Int] {
        var result: [Int] = []
        guard !needle.isEmpty, needle.count <= haystack.count else { return result }
        let first = needle[0]
        var index = 0
        let last = haystack.count - needle.count
        outer: while index <= last, result.count < limit {
            if haystack[index] == first {
                var offset = 1
                while offset < needle.count {
                    if haystack[index + offset] != needle[offset] {
                        index += 1
                        continue outer
                    }
                    offset += 1
                }
                result.append(index)
                index += needle.count
            } else {
                index += 1
            }
        }
        return result
    }

    static func contains(_ haystack: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        return !occurrences(of: Array(needle.utf8), in: Array(haystack.utf8), limit: 1).isEmpty
    }

    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        text.utf8.starts(with: prefix.utf8)
    }

    static func hasSuffix(_ text: String, _ suffix: String) -> Bool {
        text.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    /// Python's `str.find`: the code-point index of the first occurrence, or -1.
    static func find(_ text: String, _ needle: String, reverse: Bool = false) -> Int {
        let haystack = Array(text.utf8)
        let pattern = Array(needle.utf8)
        let offsets: [Int]
        if pattern.isEmpty {
            offsets = [reverse ? haystack.count : 0]
        } else if reverse {
            var found: [Int] = []
            var index = haystack.count - pattern.count
            while index >= 0 {
                if Array(haystack[index..<index + pattern.count]) == pattern {
                    found = [index]
                    break
                }
                index -= 1
            }
            offsets = found
        } else {
            offsets = occurrences(of: pattern, in: haystack, limit: 1)
        }
        guard let byteOffset = offsets.first else { return -1 }
        return String(decoding: haystack[..<byteOffset], as: UTF8.self).unicodeScalars.count
    }

    static func count(_ text: String, _ needle: String) -> Int {
        if needle.isEmpty { return text.unicodeScalars.count + 1 }
        return occurrences(of: Array(needle.utf8), in: Array(text.utf8)).count
    }

    // MARK: Splitting and replacing

    /// Python's `str.split(sep, maxsplit)`.
    static func split(_ text: String, separator: String?, maxSplit: Int = -1) throws(TemplateError) -> [String] {
        guard let separator else { return splitWhitespace(text, maxSplit: maxSplit) }
        guard !separator.isEmpty else { throw .type("ValueError: empty separator") }
        let bytes = Array(text.utf8)
        let offsets = occurrences(of: Array(separator.utf8), in: bytes, limit: maxSplit < 0 ? Int.max : maxSplit)
        var parts: [String] = []
        parts.reserveCapacity(offsets.count + 1)
        var start = 0
        let width = separator.utf8.count
        for offset in offsets {
            parts.append(String(decoding: bytes[start..<offset], as: UTF8.self))
            start = offset + width
        }
        parts.append(String(decoding: bytes[start...], as: UTF8.self))
        return parts
    }

    /// Python's `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ text: String, separator: String?, maxSplit: Int = -1) throws(TemplateError) -> [String] {
        if maxSplit < 0 { return try split(text, separator: separator) }
        let reversedText = String(String.UnicodeScalarView(text.unicodeScalars.reversed()))
        let reversedSeparator = separator.map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        let parts = try split(reversedText, separator: reversedSeparator, maxSplit: maxSplit)
        return parts.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
    }

    private static func splitWhitespace(_ text: String, maxSplit: Int) -> [String] {
        var parts: [String] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            while index < scalars.count, isWhitespace(scalars[index]) { index += 1 }
            guard index < scalars.count else { break }
            if maxSplit >= 0, parts.count == maxSplit {
                var end = scalars.count
                while end > index, isWhitespace(scalars[end - 1]) { end -= 1 }
                parts.append(String(String.UnicodeScalarView(scalars[index..<end])))
                break
            }
            let start = index
            while index < scalars.count, !isWhitespace(scalars[index]) { index += 1 }
            parts.append(String(String.UnicodeScalarView(scalars[start..<index])))
        }
        return parts
    }

    /// Python's `str.splitlines(keepends)`.
    static func splitLines(_ text: String, keepEnds: Bool = false) -> [String] {
        var lines: [String] = []
        let scalars = Array(text.unicodeScalars)
        var start = 0
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            var breakLength = 0
            switch scalar {
            case "\r":
                breakLength = index + 1 < scalars.count && scalars[index + 1] == "\n" ? 2 : 1
            case "\n", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}":
                breakLength = 1
            default:
                break
            }
            if breakLength > 0 {
                let end = keepEnds ? index + breakLength : index
                lines.append(String(String.UnicodeScalarView(scalars[start..<end])))
                index += breakLength
                start = index
            } else {
                index += 1
            }
        }
        if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
        return lines
    }

    /// Python's `str.replace(old, new, count)`.
    static func replace(_ text: String, _ old: String, _ new: String, count: Int = -1) throws(TemplateError) -> String {
        let growth = new.utf8.count - old.utf8.count
        if growth > 0 {
            let matches = old.isEmpty ? text.unicodeScalars.count + 1 : Self.count(text, old)
            let limited = count < 0 ? matches : min(matches, count)
            let (extra, overflow) = limited.multipliedReportingOverflow(by: growth)
            guard !overflow, text.utf8.count + extra <= RenderLimits.maximumStringBytes else {
                throw TemplateError(.limit, "replace() result exceeds \(RenderLimits.maximumStringBytes) bytes")
            }
        }
        if old.isEmpty {
            var result = String.UnicodeScalarView()
            var inserted = 0
            for scalar in text.unicodeScalars {
                if count < 0 || inserted < count {
                    result.append(contentsOf: new.unicodeScalars)
                    inserted += 1
                }
                result.append(scalar)
            }
            if count < 0 || inserted < count { result.append(contentsOf: new.unicodeScalars) }
            return String(result)
        }
        let bytes = Array(text.utf8)
        let offsets = occurrences(of: Array(old.utf8), in: bytes, limit: count < 0 ? Int.max : count)
        guard !offsets.isEmpty else { return text }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var start = 0
        for offset in offsets {
            result.append(contentsOf: bytes[start..<offset])
            result.append(contentsOf: new.utf8)
            start = offset + old.utf8.count
        }
        result.append(contentsOf: bytes[start...])
        return String(decoding: result, as: UTF8.self)
    }

    // MARK: Case

    static func capitalize(_ text: String) -> String {
        guard let first = text.unicodeScalars.first else { return text }
        let rest = String(text.unicodeScalars.dropFirst())
        return String(first).uppercased() + rest.lowercased()
    }

    /// Python's `str.title()`: uppercase after any non-letter, lowercase otherwise.
    static func title(_ text: String) -> String {
        var result = ""
        var previousCased = false
        for scalar in text.unicodeScalars {
            let properties = scalar.properties
            if properties.isCased || properties.isAlphabetic {
                result += previousCased ? String(scalar).lowercased() : String(scalar).uppercased()
                previousCased = properties.isCased
            } else {
                result.unicodeScalars.append(scalar)
                previousCased = false
            }
        }
        return result
    }

    static func isLower(_ text: String) -> Bool {
        var sawCased = false
        for scalar in text.unicodeScalars where scalar.properties.isCased {
            if scalar.properties.isUppercase { return false }
            sawCased = true
        }
        return sawCased
    }

    static func isUpper(_ text: String) -> Bool {
        var sawCased = false
        for scalar in text.unicodeScalars where scalar.properties.isCased {
            if scalar.properties.isLowercase { return false }
            sawCased = true
        }
        return sawCased
    }

    // MARK: Slicing

    /// Python's slice semantics applied to a count, returning the selected indices.
    static func sliceIndices(count: Int, start: Int?, stop: Int?, step: Int?) throws(TemplateError) -> [Int] {
        let step = step ?? 1
        guard step != 0 else { throw .type("ValueError: slice step cannot be zero") }
        func clamp(_ value: Int?, _ defaultValue: Int, lower: Int, upper: Int) -> Int {
            guard var value else { return defaultValue }
            if value < 0 { value += count }
            return min(max(value, lower), upper)
        }
        var indices: [Int] = []
        if step > 0 {
            let from = clamp(start, 0, lower: 0, upper: count)
            let to = clamp(stop, count, lower: 0, upper: count)
            var index = from
            while index < to {
                indices.append(index)
                let (next, overflow) = index.addingReportingOverflow(step)
                if overflow { break }
                index = next
            }
        } else {
            let from = clamp(start, count - 1, lower: -1, upper: count - 1)
            let to = clamp(stop, -1, lower: -1, upper: count - 1)
            var index = from
            while index > to {
                indices.append(index)
                let (next, overflow) = index.addingReportingOverflow(step)
                if overflow { break }
                index = next
            }
        }
        return indices
    }
}
