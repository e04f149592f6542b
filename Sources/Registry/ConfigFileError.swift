import Foundation
import Yams

/// What is wrong with a configuration file as a whole, the way editors and compilers say it: a syntax error as
/// `file:line:col: message` (a tab where YAML wants spaces called out), a file that cannot be read with the
/// operating system's reason ("is a folder", "Permission denied").
public enum ConfigFileError {
    /// The issue for a file that could not be read.
    static func unreadable(_ url: URL, _ error: Error) -> ConfigIssue {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return ConfigIssue(file: url.path, path: "(file)", line: nil, message: "is a folder, not a file")
        }
        return ConfigIssue(file: url.path, path: "(file)", line: nil, message: "cannot be read: \(reason(error))")
    }

    /// The issue for a file whose text is not valid YAML (or JSON).
    static func syntax(_ url: URL, _ error: Error, text: String) -> ConfigIssue {
        let kind = url.pathExtension == "json" ? "JSON" : "YAML"
        let found: (problem: String, mark: Mark)? = switch error {
        case YamlError.scanner(_, let problem, let mark, _), YamlError.parser(_, let problem, let mark, _),
             YamlError.composer(_, let problem, let mark, _):
            (problem, mark)
        default: nil
        }
        guard let (problem, mark) = found else {
            return ConfigIssue(file: url.path, path: "(file)", line: nil, message: "is not valid \(kind): \(error)")
        }
        var message = "not valid \(kind): \(problem)"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if mark.line >= 1, mark.line <= lines.count {
            let line = lines[mark.line - 1]
            if line.unicodeScalars.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
                message += " (a tab: YAML indents with spaces only)"
            }
        }
        return ConfigIssue(file: url.path, path: "(file)", line: mark.line, column: mark.column, message: message)
    }

    /// An error reading or writing a file, in the operating system's words ("No such file or directory").
    public static func reason(_ error: Error) -> String {
        if let e = error as? CocoaError {
            if let underlying = e.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
                return String(cString: strerror(Int32(underlying.code)))
            }
            switch e.code {
            case .fileReadNoSuchFile, .fileNoSuchFile: return String(cString: strerror(ENOENT))
            case .fileReadNoPermission, .fileWriteNoPermission: return String(cString: strerror(EACCES))
            case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
            case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
            case .fileReadInapplicableStringEncoding: return "not UTF-8 text"
            default: break
            }
        }
        let e = error as NSError
        if e.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(e.code))) }
        return error.localizedDescription
    }
}
