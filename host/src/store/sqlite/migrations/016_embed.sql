-- Embedded pages (issue 11). 015 is the OAuth migration of the main line.

-- RSA public keys (SPKI PEM) a tenant's backend signs its users' embed JWTs with.
-- Deactivated keys are kept for the audit trail; only active ones verify.
CREATE TABLE embed_signing_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label           TEXT,
    public_key_pem  TEXT NOT NULL,
    -- sha256 of the key's DER, hex.
    fingerprint     TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    deactivated_ms  INTEGER
);
CREATE INDEX embed_signing_keys_by_tenant ON embed_signing_keys(tenant_id, created_ms);
-- The same key cannot be active twice for one tenant (it may be registered again
-- once deactivated).
CREATE UNIQUE INDEX embed_signing_keys_active_fingerprint
    ON embed_signing_keys(tenant_id, fingerprint) WHERE deactivated_ms IS NULL;

-- Which origins may frame a tenant's embedded pages (a JSON array of canonical
-- origins), and where the OAuth flow sends its users afterwards.
CREATE TABLE embed_settings (
    tenant_id               TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    frame_ancestors         TEXT NOT NULL,
    oauth_success_redirect  TEXT,
    oauth_failure_redirect  TEXT,
    updated_ms              INTEGER NOT NULL
);

-- Sessions opened by verified embed JWTs, by the sha256 of their token (the token
-- itself is only in the pages' URLs). They end at the JWT's expiry.
CREATE TABLE embed_sessions (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    customer_id  TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    user_sub     TEXT NOT NULL,
    user_name    TEXT,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX embed_sessions_by_expiry ON embed_sessions(expires_ms);
CREATE INDEX embed_sessions_by_customer ON embed_sessions(customer_id);
