/// Durations and sizes as people write them in flags, configuration and requests.
public enum Units {
    /// "300", "1.5", "250ms", "30s", "5m", "1h", "-1" → seconds.
    public static func seconds(_ s: String) -> Double? {
        let t = trimmed(s)
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where t.hasSuffix(suffix) {
            return Double(t.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(t)
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
