-- Persisted guest state (flow, instance and integration scopes): canonical JSON
-- values by (tenant, namespace, key). `namespace` is the serialized StateNamespace.
CREATE TABLE state (
    tenant_id   TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, namespace, key)
);
