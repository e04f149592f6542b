import Foundation

/// A value passed into a template's render context.
///
/// Mirrors the JSON data model plus Jinja's `undefined`. Objects keep their keys in insertion
/// order, because `tojson` and `items()` expose that order in the rendered prompt.
public enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case object(JinjaObject)
}

/// An insertion-ordered dictionary with string keys, the object type of ``JinjaValue``.
public struct JinjaObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public init<S: Sequence>(_ pairs: S) where S.Element == (String, JinjaValue) {
        for (key, value) in pairs { self[key] = value }
    }

    /// The number of entries.
    public var count: Int { keys.count }

    /// Reads or writes an entry. Writing a new key appends it; writing an existing key keeps its
    /// position; writing `nil` removes it.
    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public func makeIterator() -> AnyIterator<(key: String, value: JinjaValue)> {
        var index = 0
        return AnyIterator {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            let key = keys[index]
            return (key, storage[key] ?? JinjaValue.none)
        }
    }

    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool {
        lhs.keys == rhs.keys && lhs.storage == rhs.storage
    }
}

extension JinjaValue {
    /// Converts the output of `JSONSerialization` (or plain Swift collections) into a value.
    ///
    /// `NSNumber` booleans are told apart from numbers by their type encoding, so `true` stays a
    /// boolean and `1` stays an integer. Unknown types become ``JinjaValue/none``.
    ///
    /// `JSONSerialization` does not preserve object key order; use ``init(jsonData:)`` when the
    /// order matters (it does whenever a template serializes tools or arguments).
    public init(json: Any) {
        switch json {
        case let value as JinjaValue:
            self = value
        case is NSNull:
            self = .none
        case let string as String:
            self = .string(string)
        case let number as NSNumber where type(of: json) != Bool.self
            && type(of: json) != Int.self && type(of: json) != Double.self:
            self = JinjaValue(number: number)
        case let bool as Bool where type(of: json) == Bool.self:
            self = .bool(bool)
        case let int as Int where type(of: json) == Int.self:
            self = .int(int)
        case let double as Double where type(of: json) == Double.self:
            self = .double(double)
        case let array as [Any]:
            self = .array(array.map { JinjaValue(json: $0) })
        case let dictionary as [String: Any]:
            var object = JinjaObject()
            for key in dictionary.keys.sorted() {
                object[key] = JinjaValue(json: dictionary[key] ?? NSNull())
            }
            self = .object(object)
        case let pairs as KeyValuePairs<String, Any>:
            self = .object(JinjaObject(pairs.map { ($0.key, JinjaValue(json: $0.value)) }))
        case let int as any BinaryInteger:
            self = Int(exactly: int).map { .int($0) } ?? .double(Double(int))
        case let float as any BinaryFloatingPoint:
            self = .double(Double(float))
        default:
            self = .none
        }
    }

    private init(number: NSNumber) {
        let encoding = String(cString: number.objCType)
        switch encoding {
        case "c", "B":
            self = .bool(number.boolValue)
        case "f", "d":
            self = .double(number.doubleValue)
        case "Q", "L", "I", "S", "C":
            let value = number.uint64Value
            self = value <= UInt64(Int.max) ? .int(Int(value)) : .double(number.doubleValue)
        default:
            self = .int(number.intValue)
        }
    }

    /// Parses JSON text, keeping object keys in document order.
    public init(jsonData data: Data) throws(TemplateError) {
        var parser = JSONParser(bytes: Array(data))
        self = try parser.parseDocument()
    }

    /// Parses JSON text, keeping object keys in document order.
    public init(jsonString string: String) throws(TemplateError) {
        var parser = JSONParser(bytes: Array(string.utf8))
        self = try parser.parseDocument()
    }

    /// Serializes the value the way Python's `json.dumps(value, ensure_ascii=False)` does.
    public func jsonString(indent: Int? = nil) -> String {
        var output = ""
        let options = JSONOptions(indent: indent.map { String(repeating: " ", count: $0) })
        // Public values never contain unserializable cases, so this cannot fail.
        try? JSONWriter(options: options).write(ChatTemplates.Value(self), into: &output, level: 0)
        return output
    }

    /// The value as plain Foundation/Swift objects (`NSNull`, `Bool`, `Int`, `Double`, `String`,
    /// `[Any]`, `[String: Any]`); `undefined` becomes `NSNull`.
    public var jsonObject: Any {
        switch self {
        case .undefined, .none: return NSNull()
        case .bool(let bool): return bool
        case .int(let int): return int
        case .double(let double): return double
        case .string(let string): return string
        case .array(let array): return array.map(\.jsonObject)
        case .object(let object):
            var dictionary: [String: Any] = [:]
            for (key, value) in object { dictionary[key] = value.jsonObject }
            return dictionary
        }
    }

    /// Looks up a key of an object value.
    public subscript(key: String) -> JinjaValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .none }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self = .object(JinjaObject(elements))
    }
}
