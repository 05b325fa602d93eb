/// Audit rows are written for every request, and several of their text fields come from the
/// client (`user`, the model name, the route). Each is cut to `maximumTextBytes` before it is
/// journaled or stored, so a hostile body cannot make every row (and every export) huge.
extension AuditRecord {
    public static let maximumTextBytes = 256

    /// The record with every text field at most `maximumTextBytes` of UTF-8, cut at a character
    /// boundary.
    public func boundedForStorage() -> AuditRecord {
        let limit = Self.maximumTextBytes
        var row = self
        row.method = method.truncatedUTF8(limit)
        row.route = route.truncatedUTF8(limit)
        row.keyID = keyID?.truncatedUTF8(limit)
        row.user = user?.truncatedUTF8(limit)
        row.provider = provider?.truncatedUTF8(limit)
        row.modelRequested = modelRequested?.truncatedUTF8(limit)
        row.modelServed = modelServed?.truncatedUTF8(limit)
        row.errorCode = errorCode?.truncatedUTF8(limit)
        // A chain is at most a handful of targets; a hostile header cannot list thousands.
        if row.attempts.count > 32 { row.attempts = Array(row.attempts.prefix(32)) }
        for index in row.attempts.indices {
            row.attempts[index].provider = row.attempts[index].provider.truncatedUTF8(limit)
            row.attempts[index].model = row.attempts[index].model.truncatedUTF8(limit)
            row.attempts[index].errorCode = row.attempts[index].errorCode?.truncatedUTF8(limit)
        }
        return row
    }
}

extension String {
    /// At most `maxBytes` bytes of UTF-8, never splitting a character; unchanged when it fits.
    public func truncatedUTF8(_ maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        var result = ""
        var used = 0
        for character in self {
            let size = character.utf8.count
            if used + size > maxBytes { break }
            result.append(character)
            used += size
        }
        return result
    }
}
