/// Durations and sizes as people write them in flags, configuration and requests.
public enum Units {
    /// The one duration grammar of flags, configuration and requests: seconds ("300", "1.5", "-1"), or numbers
    /// with units one after another ("250ms", "30s", "5m", "1h30m", "-1h") → seconds. Nil for anything else.
    public static func seconds(_ s: String) -> Double? {
        let t = trimmed(s)
        if let n = Double(t) { return n.isFinite ? n : nil }
        var rest = Substring(t), total = 0.0, negative = false
        if rest.hasPrefix("-") { negative = true; rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { ("0"..."9").contains($0) || $0 == "." }
            guard !digits.isEmpty, let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "d": total += value * 86400
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value / 1000
            default: return nil
            }
        }
        return negative ? -total : total
    }

    /// "512M", "4G", "800MB", "1024" → bytes (positive only).
    public static func bytes(_ s: String) -> Int? {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var t = trimmed(s.uppercased())
        if t.hasSuffix("B") { t.removeLast() }
        if let last = t.last, let scale = units[last], let v = Double(t.dropLast()), v > 0 { return Int(v * scale) }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }

    private static func trimmed(_ s: String) -> String {
        String(s.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
