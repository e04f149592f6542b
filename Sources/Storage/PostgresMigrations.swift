/// The PostgreSQL schema: the same tables, columns and indexes as `Migrations` (SQLite), in PostgreSQL's types, under
/// the same migration identifiers, recorded in `schema_migrations`. Never edited once released: a change is a new
/// migration, here and in `Migrations` alike.
enum PostgresMigrations {
    struct Migration: Sendable {
        let identifier: String
        /// One statement each (the extended query protocol runs one at a time).
        let statements: [String]
    }

    static let all: [Migration] = [v1, v2, v3, v4, v5, v6]

    static var identifiers: [String] { all.map(\.identifier) }

    /// The advisory lock held while migrating, so that replicas starting together migrate one after the other.
    /// ("SWYD" "MIGR" in ASCII.)
    static let lockKey: Int64 = 0x5357_5944_4D49_4752

    static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            identifier text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    /// Keys (only a salted hash of each secret) and one usage record per request.
    static let v1 = Migration(identifier: "v1: api keys and usage", statements: [
        """
        CREATE TABLE api_keys (
            id             text PRIMARY KEY,              -- the lookup id embedded in the key; not secret
            name           text NOT NULL,
            key_hash       bytea NOT NULL,                -- HMAC-SHA256(salt, key)
            salt           bytea NOT NULL,
            key_prefix     text NOT NULL,                 -- what lists show: sk-sy-<id>
            created_at     timestamptz NOT NULL,
            expires_at     timestamptz,
            revoked_at     timestamptz,
            rpm            bigint CHECK (rpm > 0),
            tpm            bigint CHECK (tpm > 0),
            budget_tokens  bigint CHECK (budget_tokens > 0),
            budget_usd     double precision CHECK (budget_usd > 0),
            allowed_models text[] NOT NULL DEFAULT '{}',  -- empty: every model
            local_only     boolean NOT NULL DEFAULT false,
            CHECK (budget_tokens IS NULL OR budget_usd IS NULL)
        )
        """,
        // A name belongs to one active key; rotated and revoked keys keep theirs for the record.
        "CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL",
        "CREATE INDEX api_keys_name ON api_keys (name)",
        """
        CREATE TABLE usage (
            id                bigserial PRIMARY KEY,
            request_id        text NOT NULL UNIQUE,       -- a retried batch writes each request once
            key_id            text,                       -- NULL when the request carried no key
            model             text NOT NULL,
            deployment        text,
            provider          text NOT NULL,
            prompt_tokens     bigint NOT NULL DEFAULT 0,
            completion_tokens bigint NOT NULL DEFAULT 0,
            latency_ms        double precision NOT NULL,
            ttft_ms           double precision,
            status            integer NOT NULL,           -- the HTTP status answered
            cost_usd          double precision,
            served_locally    boolean NOT NULL,
            requested_at      timestamptz NOT NULL
        )
        """,
        "CREATE INDEX usage_by_key ON usage (key_id, requested_at)",
        "CREATE INDEX usage_by_model ON usage (model, requested_at)",
        "CREATE INDEX usage_by_time ON usage (requested_at)",
    ])

    /// The response cache's table, as in SQLite (the cache itself is served from memory, SQLite or Redis; the table
    /// keeps the two schemas at the same version).
    static let v2 = Migration(identifier: "v2: response cache", statements: [
        """
        CREATE TABLE response_cache (
            key        text PRIMARY KEY,
            value      bytea NOT NULL,
            expires_at double precision NOT NULL
        )
        """,
        "CREATE INDEX response_cache_expiry ON response_cache (expires_at)",
    ])

    /// Per-key client address allow-lists.
    static let v3 = Migration(identifier: "v3: key ip allow-lists", statements: [
        "ALTER TABLE api_keys ADD COLUMN allowed_ips text[] NOT NULL DEFAULT '{}'",
    ])

    /// Answers of the Responses API kept for `previous_response_id` and `GET /v1/responses/{id}`.
    static let v4 = Migration(identifier: "v4: stored responses", statements: [
        """
        CREATE TABLE responses (
            id                   text PRIMARY KEY,
            owner                text,                  -- the API key's name; NULL: no key (auth off) or the admin key
            created_at           timestamptz NOT NULL,
            model                text NOT NULL,
            previous_response_id text,
            response             text NOT NULL,         -- the response object
            input_items          text NOT NULL          -- every input item the model saw
        )
        """,
        "CREATE INDEX responses_by_time ON responses (created_at)",
    ])

    /// Conversations (OpenAI's Conversations API, the native API's sessions) and their items in order.
    static let v5 = Migration(identifier: "v5: conversations", statements: [
        """
        CREATE TABLE conversations (
            id         text PRIMARY KEY,
            owner      text,                            -- the API key's name; NULL: no key (auth off) or the admin key
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,            -- retention counts from the last change
            metadata   text NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX conversations_by_update ON conversations (updated_at)",
        """
        CREATE TABLE conversation_items (
            sequence        bigserial PRIMARY KEY,      -- the order of items within a conversation
            conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            item_id         text NOT NULL,
            item            text NOT NULL,
            created_at      timestamptz NOT NULL
        )
        """,
        "CREATE INDEX conversation_items_by_conversation ON conversation_items (conversation_id, sequence)",
    ])

    /// The Files and Batch APIs: uploaded and produced files, batches, and each batch's requests with their outcomes.
    static let v6 = Migration(identifier: "v6: files and batches", statements: [
        """
        CREATE TABLE files (
            id         text PRIMARY KEY,
            owner      text,
            purpose    text NOT NULL,
            filename   text NOT NULL,
            bytes      bigint NOT NULL,
            created_at timestamptz NOT NULL,
            content    bytea NOT NULL
        )
        """,
        "CREATE INDEX files_by_time ON files (created_at)",
        """
        CREATE TABLE batches (
            id                text PRIMARY KEY,
            owner             text,
            endpoint          text NOT NULL,
            input_file_id     text NOT NULL,
            completion_window text NOT NULL,
            metadata          text NOT NULL DEFAULT '{}',
            status            text NOT NULL,
            created_at        timestamptz NOT NULL,
            expires_at        timestamptz NOT NULL,
            in_progress_at    timestamptz,
            finalizing_at     timestamptz,
            completed_at      timestamptz,
            failed_at         timestamptz,
            expired_at        timestamptz,
            cancelling_at     timestamptz,
            cancelled_at      timestamptz,
            output_file_id    text,
            error_file_id     text,
            errors            text,
            webhook_url       text,
            webhook_attempts  integer NOT NULL DEFAULT 0,
            webhook_delivered_at timestamptz,
            runner            text,                  -- the process running it (replicas share the work)
            lease_until       timestamptz
        )
        """,
        "CREATE INDEX batches_by_time ON batches (created_at)",
        "CREATE INDEX batches_by_status ON batches (status)",
        """
        CREATE TABLE batch_requests (
            batch_id  text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
            line      bigint NOT NULL,
            custom_id text NOT NULL,
            body      text NOT NULL,
            status    text NOT NULL DEFAULT 'pending',   -- pending, done, failed
            result    text,                              -- the output line, once run
            PRIMARY KEY (batch_id, line)
        )
        """,
        "CREATE INDEX batch_requests_by_status ON batch_requests (batch_id, status)",
    ])
}
