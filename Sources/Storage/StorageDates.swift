import Foundation

/// Dates as the CLI takes and shows them (UTC).
public enum StorageDates {
    /// Which way a duration such as `30d` counts from now.
    public enum Direction: Sendable {
        /// `--expires 30d`: thirty days from now.
        case future
        /// `--since 24h`: twenty-four hours ago.
        case past
    }

    /// Parses `2027-01-31` (00:00 UTC that day), `2027-01-31T12:00:00Z` (or with an offset such as `+02:00`,
    /// fractional seconds allowed), or a duration from `now`: a whole number followed by `m`, `h`, `d` or `w`.
    public static func parse(_ text: String, now: Date = Date(), direction: Direction) throws -> Date {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let seconds = durationSeconds(text) {
            return now.addingTimeInterval(direction == .future ? seconds : -seconds)
        }
        if let date = day(text) { return date }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds]] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        throw StorageError.invalid("'\(text)' is not a date: use 2027-01-31, 2027-01-31T12:00:00Z, or a duration such as 90m, 12h, 30d, 2w")
    }

    /// `2027-01-31 12:00Z`.
    public static func display(_ date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    private static var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }

    private static func durationSeconds(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let count = Int(text.dropLast()), count >= 0, count <= 100_000 else { return nil }
        switch unit {
        case "m": return TimeInterval(count) * 60
        case "h": return TimeInterval(count) * 3600
        case "d": return TimeInterval(count) * 86_400
        case "w": return TimeInterval(count) * 604_800
        default: return nil
        }
    }

    /// `YYYY-MM-DD`, checked to be a real day (no 2027-02-30).
    private static func day(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else { return nil }
        let components = DateComponents(year: year, month: month, day: day)
        guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { return nil }
        return date
    }
}
