import Foundation

/// A compiled chat template.
///
/// Parses a Jinja2 template once and renders it many times, following the conventions of
/// Hugging Face transformers: a sandbox that refuses mutation of data (`list.append` fails),
/// `trim_blocks` and `lstrip_blocks` on, `break`/`continue`, a `tojson` filter that writes
/// Python's `json.dumps` format, and the globals `raise_exception(message)` and
/// `strftime_now(format)`.
///
/// ```swift
/// let template = try ChatTemplate(source: source)
/// let prompt = try template.render([
///     "messages": try JinjaValue(jsonString: messagesJSON),
///     "add_generation_prompt": true,
///     "bos_token": "<s>",
/// ])
/// ```
public struct ChatTemplate: Sendable {
    private let body: [Statement]
    private let limits: RenderLimits

    /// Parses `source`.
    ///
    /// - Parameters:
    ///   - trimBlocks: Remove the first newline after a block tag (Jinja2's `trim_blocks`).
    ///   - lstripBlocks: Remove spaces and tabs before a block tag at the start of a line
    ///     (Jinja2's `lstrip_blocks`).
    /// - Throws: ``TemplateError`` with the line of the first syntax error, or of an unknown
    ///   filter or test used outside a conditional.
    public init(source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) throws(TemplateError) {
        body = try Parser.parse(source, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        limits = RenderLimits()
    }

    /// Renders the template.
    ///
    /// - Parameters:
    ///   - context: The template variables (`messages`, `tools`, `add_generation_prompt`,
    ///     `bos_token`, ...).
    ///   - now: The time `strftime_now` formats, in UTC.
    /// - Throws: ``TemplateError``; a template's own `raise_exception` surfaces as
    ///   ``TemplateError/Kind/raised`` with the template's message.
    public func render(_ context: [String: JinjaValue], now: Date = Date()) throws(TemplateError) -> String {
        var variables: [String: Value] = [:]
        variables.reserveCapacity(context.count)
        for (name, value) in context { variables[name] = Value(value) }
        let interpreter = Interpreter(now: now, limits: limits)
        return try interpreter.render(body, context: variables)
    }
}
