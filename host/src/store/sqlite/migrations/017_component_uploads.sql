-- Uploads compiled off the request path (issue 14): a large component (a JavaScript or
-- Python runtime is 10-40 MB) compiles for seconds, so the upload is answered with this
-- row's id and the client follows its status from `compiling` to `ready` or `failed`.
CREATE TABLE component_uploads (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('compiling', 'ready', 'failed')),
    size            INTEGER NOT NULL,
    -- sha256 of the uploaded bytes, hex.
    hash            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,
    -- When ready: the registry version the upload became, and whether it was new.
    component_key   TEXT,
    version         INTEGER,
    created_version INTEGER,
    -- When failed: the error code and message the synchronous upload would have given.
    error_code      TEXT,
    error_message   TEXT
);
CREATE INDEX component_uploads_by_tenant ON component_uploads(tenant_id, created_ms);
