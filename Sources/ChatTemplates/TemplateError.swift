/// An error raised while parsing or rendering a template.
///
/// Every error carries the 1-based line of the template construct that caused it, so that
/// `description` reads like `line 12: unknown filter 'foo'`.
public struct TemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The broad category of an error, mirroring the exception classes of Python's Jinja2.
    public enum Kind: String, Sendable, Equatable {
        /// The template source is malformed (`TemplateSyntaxError`).
        case syntax
        /// An undefined value was used in a way that requires a value (`UndefinedError`).
        case undefined
        /// An operation was applied to values of the wrong type (`TypeError`, `ValueError`).
        case type
        /// The template tried to mutate data or reach into internals (`SecurityError`).
        case security
        /// The template called `raise_exception(message)`.
        case raised
        /// The template uses a filter, test, method or tag this interpreter does not provide.
        case unsupported
        /// A resource limit (output size, recursion depth, iteration count) was exceeded.
        case limit
        /// Any other runtime failure (`TemplateRuntimeError`).
        case runtime
    }

    /// The category of the error.
    public var kind: Kind
    /// The 1-based line in the template source, or 0 when unknown.
    public var line: Int
    /// A human-readable message. For ``Kind/raised`` this is exactly the template's message.
    public var message: String

    public init(_ kind: Kind, _ message: String, line: Int = 0) {
        self.kind = kind
        self.message = message
        self.line = line
    }

    public var description: String {
        let body = kind == .raised ? "raise_exception: \(message)" : message
        return line > 0 ? "line \(line): \(body)" : body
    }

    /// Returns a copy carrying `line` unless a line is already known.
    func at(line newLine: Int) -> TemplateError {
        guard line == 0 else { return self }
        var copy = self
        copy.line = newLine
        return copy
    }
}

extension TemplateError {
    static func syntax(_ message: String, line: Int) -> TemplateError {
        TemplateError(.syntax, message, line: line)
    }

    static func type(_ message: String) -> TemplateError {
        TemplateError(.type, message)
    }

    static func unsupported(_ message: String) -> TemplateError {
        TemplateError(.unsupported, message)
    }
}
