import Foundation

/// Python's `datetime.strftime` (glibc flavour), evaluated in UTC.
enum Strftime {
    private static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ]

    static func format(_ format: String, _ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let components = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = components.year ?? 1970
        let month = components.month ?? 1
        let day = components.day ?? 1
        let hour = components.hour ?? 0
        let minute = components.minute ?? 0
        let second = components.second ?? 0
        let weekday = (components.weekday ?? 1) - 1  // 0 = Sunday
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        let hour12 = hour % 12 == 0 ? 12 : hour % 12

        func padded(_ value: Int, _ width: Int, _ pad: Character = "0") -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: pad, count: width - text.count) + text
        }

        var result = ""
        var iterator = Array(format).makeIterator()
        while let character = iterator.next() {
            guard character == "%" else {
                result.append(character)
                continue
            }
            guard var code = iterator.next() else {
                result.append("%")
                break
            }
            var noPadding = false
            if code == "-" {
                noPadding = true
                guard let next = iterator.next() else {
                    result += "%-"
                    break
                }
                code = next
            }
            func number(_ value: Int, _ width: Int) -> String { noPadding ? String(value) : padded(value, width) }
            switch code {
            case "Y": result += String(year)
            case "y": result += number(year % 100, 2)
            case "C": result += number(year / 100, 2)
            case "m": result += number(month, 2)
            case "d": result += number(day, 2)
            case "e": result += noPadding ? String(day) : padded(day, 2, " ")
            case "H": result += number(hour, 2)
            case "I": result += number(hour12, 2)
            case "l": result += noPadding ? String(hour12) : padded(hour12, 2, " ")
            case "M": result += number(minute, 2)
            case "S": result += number(second, 2)
            case "f": result += padded((components.nanosecond ?? 0) / 1000, 6)
            case "p": result += hour < 12 ? "AM" : "PM"
            case "P": result += hour < 12 ? "am" : "pm"
            case "a": result += String(weekdays[weekday].prefix(3))
            case "A": result += weekdays[weekday]
            case "w": result += String(weekday)
            case "u": result += String(weekday == 0 ? 7 : weekday)
            case "b", "h": result += String(months[month - 1].prefix(3))
            case "B": result += months[month - 1]
            case "j": result += number(dayOfYear, 3)
            case "D": result += "\(padded(month, 2))/\(padded(day, 2))/\(padded(year % 100, 2))"
            case "F": result += "\(year)-\(padded(month, 2))-\(padded(day, 2))"
            case "T": result += "\(padded(hour, 2)):\(padded(minute, 2)):\(padded(second, 2))"
            case "R": result += "\(padded(hour, 2)):\(padded(minute, 2))"
            case "c":
                result += "\(weekdays[weekday].prefix(3)) \(months[month - 1].prefix(3)) \(padded(day, 2, " ")) "
                result += "\(padded(hour, 2)):\(padded(minute, 2)):\(padded(second, 2)) \(year)"
            case "x": result += "\(padded(month, 2))/\(padded(day, 2))/\(padded(year % 100, 2))"
            case "X": result += "\(padded(hour, 2)):\(padded(minute, 2)):\(padded(second, 2))"
            case "z": result += "+0000"
            case "Z": result += "UTC"
            case "s": result += String(Int(date.timeIntervalSince1970))
            case "n": result += "\n"
            case "t": result += "\t"
            case "%": result += "%"
            case "U", "W":
                let firstWeekday = code == "U" ? 0 : 1
                let offset = (weekday - firstWeekday + 7) % 7
                result += number((dayOfYear - 1 - offset + 7) / 7, 2)
            default:
                result.append("%")
                if noPadding { result.append("-") }
                result.append(code)
            }
        }
        return result
    }
}
