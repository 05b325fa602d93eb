/// The price list the gateway ships with (USD per 1M tokens), one row per model of docs/api.md's
/// provider table plus common embedding models. Operators override any row with `price set`.
///
/// Sources, read 2025-06 to 2025-10 (list prices, standard tier, no batch discount):
/// - OpenAI: https://openai.com/api/pricing (cached input = the "cached input" column).
/// - Anthropic: https://www.anthropic.com/pricing#api (cached input = cache hits/refreshes,
///   cache write = 5-minute cache writes, 1.25 × input). claude-haiku-4 uses Claude Haiku 4.5.
/// - Google: https://ai.google.dev/gemini-api/docs/pricing (prompts ≤ 128k tokens for 1.5 models;
///   cached input = context caching price).
/// - Mistral: https://mistral.ai/pricing#api-pricing (mistral-large = Large 24.11, mistral-medium = Medium 3).
/// - Cohere: https://cohere.com/pricing (Command R+ 08-2024, Command R 08-2024).
enum DefaultPrices {
    struct Row {
        let model: String
        let provider: String
        let input: Double
        let output: Double
        let cachedInput: Double?
        let cacheWrite: Double?
        let source: String
    }

    static let rows: [Row] = [
        Row(model: "gpt-4o", provider: "openai", input: 2.50, output: 10.00, cachedInput: 1.25, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "gpt-4o-mini", provider: "openai", input: 0.15, output: 0.60, cachedInput: 0.075, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "gpt-4-turbo", provider: "openai", input: 10.00, output: 30.00, cachedInput: nil, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "gpt-3.5-turbo", provider: "openai", input: 0.50, output: 1.50, cachedInput: nil, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "o1-mini", provider: "openai", input: 1.10, output: 4.40, cachedInput: 0.55, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "text-embedding-3-small", provider: "openai", input: 0.02, output: 0, cachedInput: nil, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "text-embedding-3-large", provider: "openai", input: 0.13, output: 0, cachedInput: nil, cacheWrite: nil, source: "openai.com/api/pricing 2025-10"),
        Row(model: "claude-opus-4", provider: "anthropic", input: 15.00, output: 75.00, cachedInput: 1.50, cacheWrite: 18.75, source: "anthropic.com/pricing 2025-10"),
        Row(model: "claude-sonnet-4", provider: "anthropic", input: 3.00, output: 15.00, cachedInput: 0.30, cacheWrite: 3.75, source: "anthropic.com/pricing 2025-10"),
        Row(model: "claude-haiku-4", provider: "anthropic", input: 1.00, output: 5.00, cachedInput: 0.10, cacheWrite: 1.25, source: "anthropic.com/pricing 2025-10 (Haiku 4.5)"),
        Row(model: "gemini-2.0-flash", provider: "google", input: 0.10, output: 0.40, cachedInput: 0.025, cacheWrite: nil, source: "ai.google.dev/gemini-api/docs/pricing 2025-10"),
        Row(model: "gemini-1.5-pro", provider: "google", input: 1.25, output: 5.00, cachedInput: 0.3125, cacheWrite: nil, source: "ai.google.dev/gemini-api/docs/pricing 2025-06 (≤128k prompt)"),
        Row(model: "gemini-1.5-flash", provider: "google", input: 0.075, output: 0.30, cachedInput: 0.01875, cacheWrite: nil, source: "ai.google.dev/gemini-api/docs/pricing 2025-06 (≤128k prompt)"),
        Row(model: "mistral-large", provider: "mistral", input: 2.00, output: 6.00, cachedInput: nil, cacheWrite: nil, source: "mistral.ai/pricing 2025-10 (Large 24.11)"),
        Row(model: "mistral-medium", provider: "mistral", input: 0.40, output: 2.00, cachedInput: nil, cacheWrite: nil, source: "mistral.ai/pricing 2025-10 (Medium 3)"),
        Row(model: "codestral", provider: "mistral", input: 0.30, output: 0.90, cachedInput: nil, cacheWrite: nil, source: "mistral.ai/pricing 2025-10"),
        Row(model: "mistral-embed", provider: "mistral", input: 0.10, output: 0, cachedInput: nil, cacheWrite: nil, source: "mistral.ai/pricing 2025-10"),
        Row(model: "command-r-plus", provider: "cohere", input: 2.50, output: 10.00, cachedInput: nil, cacheWrite: nil, source: "cohere.com/pricing 2025-10 (08-2024)"),
        Row(model: "command-r", provider: "cohere", input: 0.15, output: 0.60, cachedInput: nil, cacheWrite: nil, source: "cohere.com/pricing 2025-10 (08-2024)"),
        Row(model: "embed-english-v3.0", provider: "cohere", input: 0.10, output: 0, cachedInput: nil, cacheWrite: nil, source: "cohere.com/pricing 2025-10"),
    ]

    /// `INSERT` statements for the migration (updated_at 0 marks a shipped default).
    static var insertSQL: String {
        func number(_ value: Double?) -> String { value.map { String($0) } ?? "NULL" }
        return rows.map { row in
            "\nINSERT INTO prices (model, provider, input_per_million, output_per_million, cached_input_per_million, cache_write_per_million, source, updated_at) VALUES ('\(row.model)', '\(row.provider)', \(row.input), \(row.output), \(number(row.cachedInput)), \(number(row.cacheWrite)), '\(row.source)', 0);"
        }.joined()
    }
}
