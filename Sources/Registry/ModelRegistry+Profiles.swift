import Core
import Foundation
import Yams

/// Profiles: `profiles/NAME.yaml` beside the registry files, merged over them.
///
/// The base configuration is the registry files as `load(directory:)` reads them (a later file's entry replaces an
/// earlier one's, name by name). A profile is a document of the same shape — `providers`, `models`, `aliases`,
/// `roles`, `routing`, `description` — merged over that base as a JSON merge patch (RFC 7396): mappings merge key by
/// key, to any depth; a list or a value replaces what was there; `null` (`~`) deletes the key. So
///
/// ```yaml
/// description: code on this machine
/// models:
///   fast: { strategy: ordered }              # only fast's strategy changes
///   smollm2: { defaults: { temperature: 0.2 } }
///   mini: ~                                  # mini is gone
/// roles:
///   coder: { prefer: [smollm2] }             # prefer replaces the base list
/// routing:
///   auto: { code: smollm2 }
/// ```
///
/// The merged document is then read like any registry file; each error names the file (base or profile) and
/// line the offending value came from.
extension ModelRegistry {
    public static let profileExtensions = ["yaml", "yml", "json"]

    /// `profiles/` in the configuration folder.
    public static func defaultProfilesDirectory(for directory: URL) -> URL {
        directory.appendingPathComponent("profiles", isDirectory: true)
    }

    /// A profile's name: letters, digits, `.`, `_`, `-` (it is a file name).
    public static func isValidProfileName(_ name: String) -> Bool {
        isPlainName(name) && !name.hasPrefix(".") && name.count <= 64
    }

    /// The profiles in `directory` (file names without their extension), sorted.
    public static func profileNames(in directory: URL) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let names = files.compactMap { f -> String? in
            let url = URL(fileURLWithPath: f)
            guard profileExtensions.contains(url.pathExtension.lowercased()) else { return nil }
            let name = url.deletingPathExtension().lastPathComponent
            return isValidProfileName(name) ? name : nil
        }
        return Array(Set(names)).sorted()
    }

    /// The file of profile `name` in `directory`, if there is one.
    public static func profileFile(_ name: String, in directory: URL) -> URL? {
        guard isValidProfileName(name) else { return nil }
        for ext in profileExtensions {
            let url = directory.appendingPathComponent("\(name).\(ext)")
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        return nil
    }

    /// The `description:` of a profile file, if it has one.
    public static func profileDescription(_ url: URL) -> String? {
        guard let text = try? String(contentsOf: url, encoding: .utf8), let root = try? ConfigValue.parseYAML(text),
              case .map(let top) = root, let d = top.first(where: { $0.key == "description" }), case .scalar(let s, _) = d.value else { return nil }
        return s
    }

    /// The configuration as one document: the registry files, later ones replacing earlier entries name by name,
    /// and the profile (if any) merged over them — what `switchyard profiles show` prints.
    public static func effectiveDocument(directory: URL, profile: String? = nil, profilesDirectory: URL? = nil) throws -> ConfigValue {
        try document(directory: directory, profile: profile, in: profilesDirectory ?? defaultProfilesDirectory(for: directory)).value
    }

    static func load(directory: URL, profile: String, in profilesDirectory: URL) throws -> ModelRegistry {
        let base = try load(directory: directory)
        let (merged, files) = try document(directory: directory, profile: profile, in: profilesDirectory)
        let locate = { (line: Int?) -> (String, Int?) in
            guard let line else { return (files.last ?? "", nil) }
            let index = line >> tagBits
            return (index < files.count ? files[index] : files.last ?? "", line & ((1 << tagBits) - 1))
        }
        let layer = parse(merged, file: files.last ?? "").relocated(locate)
        var registry = ModelRegistry()
        registry.merge(layer)
        registry.files = base.files
        registry.profile = profile
        registry.profileFile = files.last
        let issues = layer.issues + registry.crossCheck()
        if !issues.isEmpty { throw ConfigError(issues: issues) }
        return registry
    }

    /// Lines of file `i` are tagged `i << tagBits + line`, so that one merged document still says where each
    /// value came from.
    static let tagBits = 24

    /// The merged document, and the files its line tags index (the profile's last).
    static func document(directory: URL, profile: String?, in profilesDirectory: URL) throws -> (value: ConfigValue, files: [String]) {
        var files: [String] = []
        var document = ConfigValue.map([])
        for name in fileNames {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let root = try read(url)
            document = overlay(document, root.tagged(files.count << tagBits))
            files.append(url.path)
        }
        guard let profile else { return (document, files) }
        guard let url = profileFile(profile, in: profilesDirectory) else {
            let known = profileNames(in: profilesDirectory)
            let why = isValidProfileName(profile) ? "no profile '\(profile)'" : "'\(profile)' is not a profile name (letters, digits, '.', '_', '-')"
            throw ConfigError(issues: [ConfigIssue(file: profilesDirectory.appendingPathComponent("\(profile).yaml").path, path: "(file)", line: nil,
                                                   message: "\(why) in \(profilesDirectory.path) (profiles: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")])
        }
        let patch = try read(url)
        switch patch {
        case .map, .null: break
        default:
            throw ConfigError(issues: [ConfigIssue(file: url.path, path: "(root)", line: nil, message: "expected a mapping of the sections to change (models, roles, …), found \(patch.kind)")])
        }
        files.append(url.path)
        return (mergePatch(document, patch.tagged((files.count - 1) << tagBits)), files)
    }

    private static func read(_ url: URL) throws -> ConfigValue {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError(issues: [ConfigFileError.unreadable(url, error)])
        }
        do { return try ConfigValue.parseYAML(text) } catch {
            throw ConfigError(issues: [ConfigFileError.syntax(url, error, text: text)])
        }
    }

    /// A later registry file over an earlier one: entries of `providers`, `models`, `aliases` and `roles`, and the
    /// rules of `routing.auto`, replace the earlier ones of the same name (as `load(directory:)` merges them).
    static func overlay(_ base: ConfigValue, _ layer: ConfigValue) -> ConfigValue {
        func replace(_ base: ConfigValue, _ layer: ConfigValue, depth: Int) -> ConfigValue {
            if depth > 0, case .null = layer { return base }
            guard depth > 0, case .map(let changes) = layer else { return layer }
            var entries: [(key: String, value: ConfigValue, line: Int?)] = if case .map(let b) = base { b } else { [] }
            for c in changes {
                if let i = entries.firstIndex(where: { $0.key == c.key }) {
                    entries[i] = (c.key, replace(entries[i].value, c.value, depth: depth - 1), c.line)
                } else {
                    entries.append(c)
                }
            }
            return .map(entries)
        }
        guard case .map(let sections) = layer else { return base }
        var out = base
        for s in sections {
            // Levels merged below the section: routing.auto's rules, other sections' entries, description none.
            let depth = s.key == "routing" ? 2 : s.key == "description" ? 0 : 1
            out = replace(out, .map([(s.key, s.value, s.line)]), depth: 1 + depth)
        }
        return out
    }

    /// RFC 7396: mappings merge recursively, `null` deletes, anything else replaces.
    public static func mergePatch(_ base: ConfigValue, _ patch: ConfigValue) -> ConfigValue {
        guard case .map(let changes) = patch else { return patch }
        var entries: [(key: String, value: ConfigValue, line: Int?)] = if case .map(let b) = base { b } else { [] }
        for c in changes {
            let i = entries.firstIndex { $0.key == c.key }
            if case .null = c.value {
                if let i { entries.remove(at: i) }
            } else if let i {
                entries[i] = (c.key, mergePatch(entries[i].value, c.value), c.line ?? entries[i].line)
            } else {
                entries.append((c.key, mergePatch(.null, c.value), c.line))
            }
        }
        return .map(entries)
    }
}

extension ModelRegistry.Layer {
    /// The layer with every file and line decoded from the merged document's tags.
    func relocated(_ locate: (Int?) -> (String, Int?)) -> Self {
        var l = self
        l.issues = issues.map { i in var i = i; (i.file, i.line) = locate(i.line); return i }
        l.providers = providers.map { p in var p = p; (p.file, p.line) = locate(p.line); return p }
        l.routes = routes.map { r in
            var r = r
            (r.file, r.line) = locate(r.line)
            r.deployments = r.deployments.map { d in var d = d; d.line = locate(d.line).1; return d }
            return r
        }
        l.models = models.map { m in var m = m; (m.file, m.line) = locate(m.line); return m }
        l.aliases = aliases.map { a in var a = a; (a.file, a.line) = locate(a.line); return a }
        l.roles = roles.map { r in var r = r; (r.file, r.line) = locate(r.line); return r }
        l.autoRules = autoRules.map { r in var r = r; (r.file, r.line) = locate(r.line); return r }
        return l
    }
}

extension ConfigValue {
    /// The same tree with `offset` added to every line.
    func tagged(_ offset: Int) -> ConfigValue {
        guard offset != 0 else { return self }
        switch self {
        case .map(let entries): return .map(entries.map { ($0.key, $0.value.tagged(offset), $0.line.map { $0 + offset }) })
        case .list(let items): return .list(items.map { $0.tagged(offset) })
        case .scalar(let s, let line): return .scalar(s, line: line.map { $0 + offset })
        case .null: return .null
        }
    }

    /// The tree as YAML text.
    public func yaml() throws -> String {
        func node(_ v: ConfigValue) -> Node {
            switch v {
            case .map(let entries): return Node(entries.map { (Node($0.key), node($0.value)) })
            case .list(let items): return Node(items.map(node))
            case .scalar(let s, _): return Node(s)
            case .null: return Node("null", Tag(.null))
            }
        }
        return try Yams.serialize(node: node(self), indent: 2, width: 120, allowUnicode: true)
    }
}
