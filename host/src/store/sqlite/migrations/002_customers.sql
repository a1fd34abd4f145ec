-- Customers of a tenant, with the tenant's own external id for them.
CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    external_id  TEXT,
    created_ms   INTEGER NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX customers_by_tenant ON customers(tenant_id, created_ms);
