/// Lower-case hexadecimal text of bytes: key ids, digests, and byte strings sent to PostgreSQL
/// inside JSON (read there with `decode(…, 'hex')`).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Self.digits  // once, not a lazy-global check per digit
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
