import ArgumentParser
import Foundation

/// Settings read from the environment, checked as strictly as the options they stand for: a value that cannot be
/// used is an error naming the variable, never silently replaced by a default.
enum EnvironmentSettings {
    static var values: [String: String] { ProcessInfo.processInfo.environment }

    /// The variable's value, nil when unset or empty.
    static func text(_ name: String) -> String? {
        guard let v = values[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        return v
    }

    /// An integer within `range`; `what` says what it must be ("a port number from 0 to 65535").
    static func int(_ name: String, in range: ClosedRange<Int>, what: String) throws -> Int? {
        guard let raw = text(name) else { return nil }
        guard let v = Int(raw), range.contains(v) else { throw ValidationError("\(name) is '\(raw)', which is not \(what)") }
        return v
    }

    /// One of `choices`.
    static func choice(_ name: String, _ choices: [String]) throws -> String? {
        guard let raw = text(name) else { return nil }
        guard choices.contains(raw.lowercased()) else {
            throw ValidationError("\(name) is '\(raw)', which is not one of \(choices.joined(separator: ", "))")
        }
        return raw.lowercased()
    }

    /// A yes/no flag: 1, true, yes, on or 0, false, no, off.
    static func flag(_ name: String) throws -> Bool? {
        guard let raw = try choice(name, ["1", "true", "yes", "on", "0", "false", "no", "off"]) else { return nil }
        return ["1", "true", "yes", "on"].contains(raw)
    }

    /// `SWITCHYARD_KERNELS`, which the engine reads for itself: refused here when it names no kernel level.
    static func checkKernels() throws {
        _ = try choice("SWITCHYARD_KERNELS", ["generic", "avx2", "avx512vnni", "avx512", "vnni"])
    }
}
