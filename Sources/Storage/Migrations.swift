import GRDB

/// The schema, as a list of migrations applied in order and never edited once released: a change is a new migration.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: api keys and usage", migrate: v1)
        migrator.registerMigration("v2: response cache", migrate: v2)
        migrator.registerMigration("v3: key ip allow-lists", migrate: v3)
        migrator.registerMigration("v4: stored responses", migrate: v4)
        migrator.registerMigration("v5: conversations", migrate: v5)
        migrator.registerMigration("v6: files and batches", migrate: v6)
        return migrator
    }

    /// Keys (only a salted hash of each secret) and one usage record per request.
    static func v1(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE api_keys (
                id             TEXT PRIMARY KEY NOT NULL,    -- the lookup id embedded in the key; not secret
                name           TEXT NOT NULL,
                key_hash       BLOB NOT NULL,                -- HMAC-SHA256(salt, key)
                salt           BLOB NOT NULL,
                key_prefix     TEXT NOT NULL,                -- what lists show: sk-sy-<id>
                created_at     DATETIME NOT NULL,
                expires_at     DATETIME,
                revoked_at     DATETIME,
                rpm            INTEGER CHECK (rpm > 0),
                tpm            INTEGER CHECK (tpm > 0),
                budget_tokens  INTEGER CHECK (budget_tokens > 0),
                budget_usd     REAL CHECK (budget_usd > 0),
                allowed_models TEXT NOT NULL DEFAULT '[]',   -- JSON array; empty: every model
                local_only     BOOLEAN NOT NULL DEFAULT 0,
                CHECK (budget_tokens IS NULL OR budget_usd IS NULL)
            );
            -- A name belongs to one active key; rotated and revoked keys keep theirs for the record.
            CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
            CREATE INDEX api_keys_name ON api_keys(name);

            CREATE TABLE usage (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id        TEXT NOT NULL UNIQUE,       -- a retried batch writes each request once
                key_id            TEXT,                       -- NULL when the request carried no key
                model             TEXT NOT NULL,
                deployment        TEXT,
                provider          TEXT NOT NULL,
                prompt_tokens     INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                latency_ms        REAL NOT NULL,
                ttft_ms           REAL,
                status            INTEGER NOT NULL,           -- the HTTP status answered
                cost_usd          REAL,
                served_locally    BOOLEAN NOT NULL,
                requested_at      DATETIME NOT NULL
            );
            CREATE INDEX usage_by_key ON usage(key_id, requested_at);
            CREATE INDEX usage_by_model ON usage(model, requested_at);
            CREATE INDEX usage_by_time ON usage(requested_at);
            """)
    }

    /// Cached answers (`serve --cache sqlite`): opaque values with an expiry, in seconds since 1970.
    static func v2(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE response_cache (
                key        TEXT PRIMARY KEY NOT NULL,
                value      BLOB NOT NULL,
                expires_at REAL NOT NULL
            );
            CREATE INDEX response_cache_expiry ON response_cache(expires_at);
            """)
    }

    /// Per-key client address allow-lists (JSON array; empty: any address).
    static func v3(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '[]'")
    }

    /// Answers of the Responses API kept for `previous_response_id` and `GET /v1/responses/{id}` (JSON text).
    static func v4(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE responses (
                id                   TEXT PRIMARY KEY NOT NULL,
                owner                TEXT,                  -- the API key's name; NULL: no key (auth off) or the admin key
                created_at           DATETIME NOT NULL,
                model                TEXT NOT NULL,
                previous_response_id TEXT,
                response             TEXT NOT NULL,         -- the response object
                input_items          TEXT NOT NULL          -- every input item the model saw
            );
            CREATE INDEX responses_by_time ON responses(created_at);
            """)
    }

    /// Conversations (OpenAI's Conversations API, the native API's sessions) and their items in order (JSON text).
    static func v5(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE conversations (
                id         TEXT PRIMARY KEY NOT NULL,
                owner      TEXT,                            -- the API key's name; NULL: no key (auth off) or the admin key
                created_at DATETIME NOT NULL,
                updated_at DATETIME NOT NULL,               -- retention counts from the last change
                metadata   TEXT NOT NULL DEFAULT '{}'
            );
            CREATE INDEX conversations_by_update ON conversations(updated_at);
            CREATE TABLE conversation_items (
                sequence        INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order of items within a conversation
                conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                item_id         TEXT NOT NULL,
                item            TEXT NOT NULL,
                created_at      DATETIME NOT NULL
            );
            CREATE INDEX conversation_items_by_conversation ON conversation_items(conversation_id, sequence);
            """)
    }

    /// The Files and Batch APIs: uploaded and produced files (content in the database), batches, and each batch's
    /// requests with their outcomes.
    static func v6(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE files (
                id         TEXT PRIMARY KEY NOT NULL,
                owner      TEXT,
                purpose    TEXT NOT NULL,
                filename   TEXT NOT NULL,
                bytes      INTEGER NOT NULL,
                created_at DATETIME NOT NULL,
                content    BLOB NOT NULL
            );
            CREATE INDEX files_by_time ON files(created_at);
            CREATE TABLE batches (
                id                TEXT PRIMARY KEY NOT NULL,
                owner             TEXT,
                endpoint          TEXT NOT NULL,
                input_file_id     TEXT NOT NULL,
                completion_window TEXT NOT NULL,
                metadata          TEXT NOT NULL DEFAULT '{}',
                status            TEXT NOT NULL,
                created_at        DATETIME NOT NULL,
                expires_at        DATETIME NOT NULL,
                in_progress_at    DATETIME,
                finalizing_at     DATETIME,
                completed_at      DATETIME,
                failed_at         DATETIME,
                expired_at        DATETIME,
                cancelling_at     DATETIME,
                cancelled_at      DATETIME,
                output_file_id    TEXT,
                error_file_id     TEXT,
                errors            TEXT,
                webhook_url       TEXT,
                webhook_attempts  INTEGER NOT NULL DEFAULT 0,
                webhook_delivered_at DATETIME,
                runner            TEXT,                  -- the process running it (replicas share the work)
                lease_until       DATETIME
            );
            CREATE INDEX batches_by_time ON batches(created_at);
            CREATE INDEX batches_by_status ON batches(status);
            CREATE TABLE batch_requests (
                batch_id  TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                line      INTEGER NOT NULL,
                custom_id TEXT NOT NULL,
                body      TEXT NOT NULL,
                status    TEXT NOT NULL DEFAULT 'pending',   -- pending, done, failed
                result    TEXT,                              -- the output line, once run
                PRIMARY KEY (batch_id, line)
            );
            CREATE INDEX batch_requests_by_status ON batch_requests(batch_id, status);
            """)
    }
}
