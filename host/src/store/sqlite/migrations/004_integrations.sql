-- Integration definitions: integer versions per (tenant, key); an identical definition
-- is the same version. `pins` is JSON mapping each component key to its registry version
-- and hash, `{"github": {"version": 2, "hash": "<sha256 hex>"}}`, read with JSON1 when
-- a component version is deleted.
CREATE TABLE integration_versions (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    version          INTEGER NOT NULL,
    definition       TEXT NOT NULL,
    definition_hash  TEXT NOT NULL,
    pins             TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key, version),
    UNIQUE (tenant_id, key, definition_hash)
);
