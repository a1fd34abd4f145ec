-- OAuth 2.0 connections of instances: the grant (tokens and the settings needed to
-- refresh and revoke them) sealed with AEAD, the refresh schedule, and a lease on the
-- row so that one host at a time refreshes a connection (a rotated refresh token used
-- twice would log the customer out).
CREATE TABLE oauth_connections (
    tenant_id       TEXT NOT NULL,
    instance_id     TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    connection_key  TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_detail   TEXT,
    sealed_grant    BLOB NOT NULL,
    expires_at_ms   INTEGER,
    refresh_due_ms  INTEGER,
    refreshed_ms    INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, connection_key)
);
CREATE INDEX oauth_connections_due ON oauth_connections(refresh_due_ms)
    WHERE status = 'active' AND refresh_due_ms IS NOT NULL;

-- Authorizations in progress: the row a `state` names, taken (deleted) by the first
-- callback that presents it, so a state is single-use.
CREATE TABLE oauth_pending (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    instance_id     TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    connection_key  TEXT NOT NULL,
    sealed_verifier BLOB NOT NULL,
    popup           INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL
);

-- A tenant's fixed values of a component's connection type (an OAuth app's client id
-- and secret, endpoint overrides), sealed; customers use them without seeing them.
CREATE TABLE connection_templates (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    component_key   TEXT NOT NULL,
    connection_key  TEXT NOT NULL,
    sealed_fields   BLOB NOT NULL,
    field_names     TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, component_key, connection_key)
);
