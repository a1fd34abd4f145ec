-- The component registry: integer versions per (tenant, key); identical bytes are the
-- same version. Bytes are stored once per content hash, shared by tenants, so a new
-- engine can recompile them.
CREATE TABLE component_blobs (
    hash   TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);

-- The last version number given out per (tenant, key): deleting the newest version
-- must not let its number be reused for other bytes.
CREATE TABLE component_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    last_version  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE component_versions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        TEXT NOT NULL REFERENCES component_blobs(hash),
    world       TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key, version),
    UNIQUE (tenant_id, key, hash)
);
-- Whether any version still uses a blob, when one is deleted.
CREATE INDEX component_versions_by_hash ON component_versions(hash);
