-- Tenants and their API keys. Keys are stored as sha256 hex digests: the key itself
-- is shown once, at creation, and cannot be read back.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_hash     TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The first characters of the key, so an operator can tell keys apart.
    prefix       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
);
CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);
