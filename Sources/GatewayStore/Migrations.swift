/// One step of the schema's history.
struct Migration: Sendable {
    let version: Int
    let name: String
    let sql: String
}

/// The schema's history, append-only: a released migration is never edited, a change is a new
/// entry with the next version. Each runs in its own `BEGIN IMMEDIATE` transaction and is
/// recorded in `schema_migrations`. Times are integer milliseconds since the Unix epoch (UTC).
enum Migrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "initial", sql: """
            CREATE TABLE orgs (
                id INTEGER PRIMARY KEY,
                name TEXT UNIQUE NOT NULL,
                rpm INTEGER,
                tpm INTEGER,
                monthly_budget_usd REAL,
                created_at INTEGER NOT NULL
            );

            CREATE TABLE projects (
                id INTEGER PRIMARY KEY,
                org_id INTEGER NOT NULL REFERENCES orgs(id),
                name TEXT NOT NULL,
                plan TEXT NOT NULL DEFAULT 'pro' CHECK (plan IN ('free', 'pro', 'team')),
                rpm INTEGER,
                tpm INTEGER,
                monthly_budget_usd REAL,
                created_at INTEGER NOT NULL,
                UNIQUE (org_id, name)
            );

            CREATE TABLE gateway_keys (
                id TEXT PRIMARY KEY,
                project_id INTEGER NOT NULL REFERENCES projects(id),
                name TEXT,
                secret_hash BLOB NOT NULL,
                rpm INTEGER,
                tpm INTEGER,
                monthly_budget_usd REAL,
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            );
            CREATE INDEX gateway_keys_project ON gateway_keys (project_id);

            CREATE TABLE provider_settings (
                project_id INTEGER NOT NULL REFERENCES projects(id),
                provider TEXT NOT NULL,
                api_key TEXT NOT NULL,
                base_url TEXT,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (project_id, provider)
            );

            CREATE TABLE audit_log (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id TEXT NOT NULL UNIQUE,
                time_ms INTEGER NOT NULL,
                method TEXT,
                route TEXT,
                org_id INTEGER,
                project_id INTEGER,
                key_id TEXT,
                user TEXT,
                provider TEXT,
                model_requested TEXT,
                model_served TEXT,
                status INTEGER NOT NULL,
                error_code TEXT,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                cached_tokens INTEGER,
                cost_usd REAL,
                latency_ms REAL,
                upstream_latency_ms REAL,
                ttft_ms REAL,
                cache_hit INTEGER NOT NULL DEFAULT 0,
                stream INTEGER NOT NULL DEFAULT 0,
                attempts_json TEXT
            );
            CREATE INDEX audit_log_time ON audit_log (time_ms);
            CREATE INDEX audit_log_project_time ON audit_log (project_id, time_ms);

            CREATE TABLE settings (
                key TEXT PRIMARY KEY,
                value TEXT
            );
            """),
        Migration(version: 2, name: "limits_and_prices", sql: """
            -- Sliding-window counters for RPM/TPM: one row per scope and second. A scope is
            -- 'k:<key id>', 'p:<project id>' or 'o:<org id>'.
            CREATE TABLE rate_buckets (
                scope TEXT NOT NULL,
                second INTEGER NOT NULL,
                requests INTEGER NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, second)
            ) WITHOUT ROWID;
            CREATE INDEX rate_buckets_second ON rate_buckets (second);

            -- Month-to-date totals per scope (UTC months, 'YYYY-MM'): requests (free plan) and
            -- spend in nano-USD (integers add up exactly).
            CREATE TABLE monthly_totals (
                scope TEXT NOT NULL,
                month TEXT NOT NULL,
                requests INTEGER NOT NULL DEFAULT 0,
                cost_nanos INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, month)
            ) WITHOUT ROWID;

            -- USD per 1M tokens. A model name also prices its dated and suffixed variants
            -- (claude-sonnet-4 prices claude-sonnet-4-20250514): longest matching prefix wins.
            CREATE TABLE prices (
                model TEXT PRIMARY KEY,
                provider TEXT,
                input_per_million REAL NOT NULL,
                output_per_million REAL NOT NULL,
                cached_input_per_million REAL,
                cache_write_per_million REAL,
                source TEXT,
                updated_at INTEGER NOT NULL
            );

            ALTER TABLE audit_log ADD COLUMN reasoning_tokens INTEGER;
            ALTER TABLE audit_log ADD COLUMN cache_write_tokens INTEGER;
            CREATE INDEX audit_log_key_time ON audit_log (key_id, time_ms);
            """ + DefaultPrices.insertSQL),
        Migration(version: 3, name: "cache_and_fallback", sql: """
            -- Cached answers. `key` is the SHA-256 of project, provider, route and canonical body;
            -- `body` is exactly what the client got (JSON, or the SSE bytes of a stream).
            CREATE TABLE cache_entries (
                key BLOB PRIMARY KEY,
                project_id INTEGER NOT NULL,
                stream INTEGER NOT NULL,
                provider TEXT NOT NULL,
                model_served TEXT,
                body BLOB NOT NULL,
                size INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX cache_entries_expires ON cache_entries (expires_at);
            CREATE INDEX cache_entries_created ON cache_entries (created_at);

            -- One row while a request computes the answer for a cache key, so identical requests
            -- (in any worker) wait for it instead of calling the provider again.
            CREATE TABLE cache_leases (
                key BLOB PRIMARY KEY,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID;

            -- A project's fallback chain for requests to one provider/model: targets is a JSON
            -- array of "provider/model" strings, tried in order.
            CREATE TABLE fallback_chains (
                project_id INTEGER NOT NULL REFERENCES projects(id),
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                targets TEXT NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (project_id, provider, model)
            );

            -- Circuit breakers, per project and provider: consecutive failures, and until when the
            -- provider is skipped (cool-down after too many failures, or a provider's Retry-After).
            CREATE TABLE circuit_breakers (
                project_id INTEGER NOT NULL,
                provider TEXT NOT NULL,
                failures INTEGER NOT NULL DEFAULT 0,
                open_until INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (project_id, provider)
            ) WITHOUT ROWID;
            """),
        Migration(version: 4, name: "settings_version", sql: """
            -- One counter that every change of a setting a worker keeps in memory bumps (prices,
            -- provider settings, fallback chains). Workers read it together with the key lookup,
            -- so a change reaches the very next request in every worker without another query.
            CREATE TABLE settings_version (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            );
            INSERT INTO settings_version (id, version) VALUES (1, 0);

            -- Fair cache eviction reads each project's oldest entries and sizes from this index
            -- alone (never the stored answers). Workers' janitors may have created it already.
            CREATE INDEX IF NOT EXISTS cache_entries_project_created ON cache_entries (project_id, created_at, size);
            DROP INDEX IF EXISTS cache_entries_created;
            """ + ["prices", "provider_settings", "fallback_chains"].flatMap { table in
                ["INSERT", "UPDATE", "DELETE"].map { event in
                    """
                    CREATE TRIGGER \(table)_\(event.lowercased())_bumps_version AFTER \(event) ON \(table)
                    BEGIN UPDATE settings_version SET version = version + 1 WHERE id = 1; END;

                    """
                }
            }.joined()),
        // The admin API: tokens, dashboard sessions, usage rollups, audit dimensions (AdminSchema.swift).
        Migration(version: 5, name: "admin", sql: AdminSchema.sql),
        Migration(version: 6, name: "key_version", sql: """
            -- One counter that every change to what a key lookup returns bumps: the key, its
            -- project and org, the settings version, and whether the project has circuit-breaker
            -- state. A worker that remembers a key confirms it inside the request's admission by
            -- reading this one row instead of the lookup's joins (SQLiteRequestStore).
            CREATE TABLE key_version (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            );
            INSERT INTO key_version (id, version) VALUES (1, 0);

            """ + [("gateway_keys", ["INSERT", "UPDATE", "DELETE"]), ("projects", ["UPDATE", "DELETE"]),
                   ("orgs", ["UPDATE", "DELETE"]), ("settings_version", ["UPDATE"]),
                   ("circuit_breakers", ["INSERT", "DELETE"])].flatMap { table, events in
                events.map { event in
                    """
                    CREATE TRIGGER \(table)_\(event.lowercased())_bumps_key_version AFTER \(event) ON \(table)
                    BEGIN UPDATE key_version SET version = version + 1 WHERE id = 1; END;

                    """
                }
            }.joined()),
    ]
}
