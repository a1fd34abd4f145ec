-- The component registry: integer versions per (tenant, key); identical bytes are the
-- same version. Bytes are stored once per content hash, shared by tenants, so a new
-- engine can recompile them.
CREATE TABLE component_blobs (
    hash   TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
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
