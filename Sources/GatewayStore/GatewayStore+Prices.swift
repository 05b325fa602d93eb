import Foundation
import GatewayCore

/// The price table: shipped defaults (migration 2) that operators can override.
extension GatewayStore {
    public func prices() throws -> [Price] {
        try connection.query(
            """
            SELECT model, provider, input_per_million, output_per_million, cached_input_per_million,
                   cache_write_per_million, source FROM prices ORDER BY provider, model
            """) { row in
            Price(model: row.string(0), provider: row.optionalString(1), input: row.double(2), output: row.double(3),
                  cachedInput: row.optionalDouble(4), cacheWrite: row.optionalDouble(5), source: row.optionalString(6))
        }
    }

    /// Refuses a price no backend should store (shared with the PostgreSQL backend).
    public static func validate(_ price: Price) throws {
        for value in [price.input, price.output] + [price.cachedInput, price.cacheWrite].compactMap({ $0 }) {
            guard value.isFinite, value >= 0 else { throw StoreError(.invalidArgument, "prices must be zero or positive numbers") }
        }
        guard !price.model.isEmpty else { throw StoreError(.invalidArgument, "the model name must not be empty") }
    }

    /// Adds or replaces a model's price.
    public func setPrice(_ price: Price) throws {
        try Self.validate(price)
        try connection.writeTransaction {
            try connection.execute(
                """
                INSERT INTO prices (model, provider, input_per_million, output_per_million, cached_input_per_million,
                                    cache_write_per_million, source, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (model) DO UPDATE SET provider = COALESCE(excluded.provider, provider),
                    input_per_million = excluded.input_per_million, output_per_million = excluded.output_per_million,
                    cached_input_per_million = excluded.cached_input_per_million,
                    cache_write_per_million = COALESCE(excluded.cache_write_per_million, cache_write_per_million),
                    source = excluded.source, updated_at = excluded.updated_at
                """,
                [.text(price.model), .string(price.provider), .double(price.input), .double(price.output),
                 .real(price.cachedInput), .real(price.cacheWrite), .string(price.source ?? "set by operator"),
                 .integer(StoreTime.nowMilliseconds())])
        }
    }
}
