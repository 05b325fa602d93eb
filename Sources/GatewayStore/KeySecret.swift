import Crypto
import GatewayCore

/// The gateway key format. The public id is `gk_` + 12 lowercase hex digits; the secret is
/// `dpx_` + the same 12 hex digits + `_` + 40 random base62 characters (≈238 bits), so the id
/// can be read out of a presented secret and the row found by primary key. Only SHA-256 of the
/// secret is stored: a fast hash is enough for a random secret of this length.
/// Admin tokens use the same shape with other prefixes (`at_`, `dpa_`), so a secret of one kind
/// can never be read as the other (`generate`/`id(fromSecret:)` take the prefixes).
public enum KeySecret {
    public static let idPrefix = "gk_"
    public static let secretPrefix = "dpx_"
    public static let adminIDPrefix = "at_"
    public static let adminSecretPrefix = "dpa_"
    static let hexCount = 12
    static let randomCount = 40
    /// `dpx_` + 12 + `_` + 40.
    static let secretLength = 4 + hexCount + 1 + randomCount

    private static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A new id and its secret, from the system's cryptographic random source.
    public static func generate(idPrefix: String = idPrefix, secretPrefix: String = secretPrefix) -> (id: String, secret: String) {
        var random = SystemRandomNumberGenerator()
        let hexText = Hex.lowercase((0..<(hexCount / 2)).map { _ in UInt8.random(in: 0...255, using: &random) })
        var tail: [UInt8] = []
        tail.reserveCapacity(randomCount)
        for _ in 0..<randomCount { tail.append(base62[Int.random(in: 0..<62, using: &random)]) }
        return (idPrefix + hexText, secretPrefix + hexText + "_" + String(decoding: tail, as: UTF8.self))
    }

    /// The key id named by a presented secret, or nil when the secret is not of our format
    /// (then it cannot be a key, and the database need not be asked). Allocates nothing: the
    /// 15-byte id is a small string.
    public static func keyID(fromSecret secret: String) -> String? {
        id(fromSecret: secret, secretPrefix: secretPrefix, idPrefix: idPrefix)
    }

    /// `keyID(fromSecret:)` for any pair of 4-byte secret and 3-byte id prefixes (admin tokens).
    public static func id(fromSecret secret: String, secretPrefix: String, idPrefix: String) -> String? {
        var secret = secret
        return secret.withUTF8 { bytes -> String? in
            guard bytes.count == secretLength else { return nil }
            for (offset, byte) in secretPrefix.utf8.enumerated() where bytes[offset] != byte { return nil }
            let hexStart = 4
            for index in hexStart..<(hexStart + hexCount) where !isLowerHex(bytes[index]) { return nil }
            guard bytes[hexStart + hexCount] == UInt8(ascii: "_") else { return nil }
            for index in (hexStart + hexCount + 1)..<secretLength where !isBase62(bytes[index]) { return nil }
            return String(unsafeUninitializedCapacity: 3 + hexCount) { id in
                for (offset, byte) in idPrefix.utf8.prefix(3).enumerated() { id[offset] = byte }
                for offset in 0..<hexCount { id[3 + offset] = bytes[hexStart + offset] }
                return 3 + hexCount
            }
        }
    }

    /// Whether `id` has the shape of a key id (`gk_` + 12 lowercase hex digits).
    static func isValidID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count == 3 + hexCount, bytes.starts(with: idPrefix.utf8) else { return false }
        return bytes.dropFirst(3).allSatisfy(isLowerHex)
    }

    static func digest(_ secret: String) -> SHA256.Digest {
        var secret = secret
        return secret.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
    }

    /// The digest's bytes, as stored in `gateway_keys.secret_hash`.
    public static func hashBytes(_ secret: String) -> [UInt8] { Array(digest(secret)) }

    /// Whether `secret` hashes to `storedHash`, compared in constant time (for another backend's rows).
    public static func matches(_ secret: String, storedHash: [UInt8]) -> Bool {
        storedHash.withUnsafeBytes { constantTimeEquals(digest(secret), $0) }
    }

    /// Compares a digest with stored bytes in time independent of where they differ (XOR
    /// accumulated over every byte), so response timing reveals nothing about the stored hash.
    static func constantTimeEquals(_ digest: SHA256.Digest, _ stored: UnsafeRawBufferPointer) -> Bool {
        digest.withUnsafeBytes { computed in
            guard computed.count == stored.count else { return false }
            var difference: UInt8 = 0
            for index in 0..<computed.count { difference |= computed[index] ^ stored[index] }
            return difference == 0
        }
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func isBase62(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}
