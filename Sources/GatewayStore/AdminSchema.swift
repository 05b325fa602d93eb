/// Migration 5's SQL, kept in its own file because it is long: everything the admin API and the
/// dashboard read. Released migrations are never edited; a change is a migration 6.
enum AdminSchema {
    static let sql = """
        -- Admin API tokens. Scope: installation (both NULL), one org, or one project. The secret
        -- (dpa_…) is stored as SHA-256 only; the id is read out of a presented secret.
        CREATE TABLE admin_tokens (
            id TEXT PRIMARY KEY,
            name TEXT,
            org_id INTEGER REFERENCES orgs(id),
            project_id INTEGER REFERENCES projects(id),
            read_only INTEGER NOT NULL DEFAULT 0,
            secret_hash BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER,
            CHECK (org_id IS NULL OR project_id IS NULL)
        );

        -- Dashboard logins: the cookie's SHA-256 (the cookie itself is never stored), the token
        -- it acts as (revoking the token ends its sessions), and when it stops working.
        CREATE TABLE admin_sessions (
            secret_hash BLOB PRIMARY KEY,
            token_id TEXT NOT NULL REFERENCES admin_tokens(id),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

        -- Usage rollups, so that no report scans audit_log. One row per (dimension kind, bucket
        -- start in ms UTC, project id (0: none), dimension value); kind is 'all' (value ''),
        -- 'model' (served, else requested, else '(none)'), 'key', 'provider' or 'user' (missing:
        -- '(none)'), so an audit row adds to 5 rows of each table. Cost in nano-USD (exact sums).
        -- unknown_cost: status < 400, tokens > 0, no cost, not a cache hit. errors: status >= 400.
        -- latency_hist / ttft_hist: LatencyHistogram blobs (200 fixed log-scale buckets, stored
        -- sparse: a 1-byte bucket index and a little-endian UInt32 count per non-empty bucket;
        -- NULL when empty) merged by deploxa_hist_merge() in the batch's upsert. The key starts
        -- with kind and bucket: every report reads one kind over a time range.
        \(rollupTable("usage_hourly"))

        -- The same per UTC day, for long ranges (a 90-day chart reads 90 buckets, not 2160).
        \(rollupTable("usage_daily"))

        -- What each project's requests named (kind 'model' (requested and served), 'user',
        -- 'key', 'provider'), for the dashboard's filters: never DISTINCT over audit_log.
        CREATE TABLE audit_dimensions (
            project_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            last_seen INTEGER NOT NULL,
            PRIMARY KEY (project_id, kind, value)
        ) WITHOUT ROWID;

        -- One row: whether the rollups cover audit_log (0 on a database that had audit rows
        -- before this migration, until `rebuildRollups`), and the newest retention cutoff (audit
        -- rows before it are gone, so a rebuild keeps the rollup buckets that end before it).
        CREATE TABLE rollup_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            complete INTEGER NOT NULL,
            audit_deleted_before INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO rollup_state (id, complete)
            VALUES (1, CASE WHEN EXISTS (SELECT 1 FROM audit_log) THEN 0 ELSE 1 END);

        -- Audit paging for an org-scoped admin token, newest first (the key and project indexes
        -- serve the other scopes). Costs one more index insert per audit row.
        CREATE INDEX audit_log_org_time ON audit_log (org_id, time_ms);
        """

    /// The hourly and daily summaries share one layout.
    private static func rollupTable(_ name: String) -> String {
        """
        CREATE TABLE \(name) (
            kind TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            project_id INTEGER NOT NULL,
            value TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost_nanos INTEGER NOT NULL DEFAULT 0,
            unknown_cost INTEGER NOT NULL DEFAULT 0,
            cache_hits INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            latency_hist BLOB,
            ttft_hist BLOB,
            PRIMARY KEY (kind, bucket, project_id, value)
        ) WITHOUT ROWID;
        """
    }
}
