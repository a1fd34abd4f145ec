-- Deployed instances of an integration version for a customer. `connections` is
-- encrypted (AEAD) JSON; the API never returns it.
CREATE TABLE instances (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    customer_id          TEXT NOT NULL REFERENCES customers(id),
    name                 TEXT NOT NULL,
    integration_key      TEXT NOT NULL,
    integration_version  INTEGER NOT NULL,
    enabled              INTEGER NOT NULL,
    config               TEXT NOT NULL,
    connections          BLOB NOT NULL,
    allowed_hosts        TEXT NOT NULL,
    flow_settings        TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_detail        TEXT,
    created_ms           INTEGER NOT NULL,
    updated_ms           INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, integration_key, integration_version)
        REFERENCES integration_versions(tenant_id, key, version)
);
CREATE INDEX instances_by_tenant ON instances(tenant_id, created_ms);
CREATE INDEX instances_by_customer ON instances(customer_id);

-- One unguessable webhook token per (instance, flow).
CREATE TABLE webhooks (
    token        TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    flow_key     TEXT NOT NULL,
    UNIQUE (instance_id, flow_key)
);
