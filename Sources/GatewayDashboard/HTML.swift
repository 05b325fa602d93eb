import Foundation

/// A fragment of markup that is safe to send: the only way dynamic text gets into a page.
///
/// Literal parts of an `HTML` string literal are trusted markup written in this module;
/// every interpolated `String` (user names, model names, key names, error codes, URLs…) goes
/// through `HTML.escape`, in text and in attribute values alike. An interpolated `HTML` is
/// inserted as is (it was built the same way). There is no other way in: the raw initialiser is
/// internal and only used for text from this module (CSS/JS constants are served as files).
public struct HTML: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The markup.
    public let rendered: String

    init(trusted: String) { rendered = trusted }

    public init(stringLiteral value: String) { rendered = value }

    public init(stringInterpolation: Interpolation) { rendered = stringInterpolation.out }

    public var description: String { rendered }

    public static let empty = HTML(trusted: "")

    /// The one escape function: `& < > " '` become entities. Used for text and for attribute
    /// values (which this module always writes between double quotes).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Concatenation of fragments.
    public static func join(_ parts: [HTML], separator: HTML = .empty) -> HTML {
        HTML(trusted: parts.map(\.rendered).joined(separator: separator.rendered))
    }

    public struct Interpolation: StringInterpolationProtocol {
        var out = ""
        public init(literalCapacity: Int, interpolationCount: Int) { out.reserveCapacity(literalCapacity * 2) }
        public mutating func appendLiteral(_ literal: String) { out += literal }
        /// Dynamic text: always escaped.
        public mutating func appendInterpolation(_ text: String) { out += HTML.escape(text) }
        /// Integers need no escaping.
        public mutating func appendInterpolation(_ n: Int) { out += String(n) }
        /// Already-safe markup.
        public mutating func appendInterpolation(_ html: HTML) { out += html.rendered }
        /// Optional markup: nothing when nil.
        public mutating func appendInterpolation(_ html: HTML?) { if let html { out += html.rendered } }
        /// A list of fragments, concatenated.
        public mutating func appendInterpolation(_ list: [HTML]) { for h in list { out += h.rendered } }
    }
}

/// URLs built from names: every path segment and query value is percent-encoded here, and only here.
public enum DashboardURL {
    /// RFC 3986 unreserved characters; everything else is percent-encoded.
    static let unreserved: CharacterSet = {
        var set = CharacterSet()
        set.insert(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return set
    }()

    /// One path segment or query component, percent-encoded (`/`, `?`, `&`, spaces… included).
    public static func encode(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    /// `base` followed by the encoded segments: `path("/dashboard/projects", "acme", "web", "keys")`.
    public static func path(_ base: String, _ segments: String...) -> String {
        ([base] + segments.map(encode)).joined(separator: "/")
    }

    /// `base?name=value&…`, skipping empty values.
    public static func query(_ base: String, _ items: [(String, String)]) -> String {
        let parts = items.filter { !$0.1.isEmpty }.map { "\(encode($0.0))=\(encode($0.1))" }
        return parts.isEmpty ? base : base + "?" + parts.joined(separator: "&")
    }

    public static func projectBase(_ project: ProjectRef) -> String {
        path("/dashboard/projects", project.org, project.name)
    }
    public static func keys(_ project: ProjectRef) -> String { projectBase(project) + "/keys" }
    public static func settings(_ project: ProjectRef) -> String { projectBase(project) + "/settings" }
    public static func request(_ id: String) -> String { path("/dashboard/requests", id) }
}
