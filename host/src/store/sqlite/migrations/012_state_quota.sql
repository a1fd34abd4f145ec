-- State quotas: every entry records the quota group it counts against and its size
-- (key plus value, in bytes), and `state_usage` keeps the bytes and keys of each
-- (tenant, group), plus the tenant's total under the empty group ''. The counters are
-- updated in the same transaction as the write they account for.
ALTER TABLE state ADD COLUMN quota_group TEXT NOT NULL DEFAULT '';
ALTER TABLE state ADD COLUMN size INTEGER NOT NULL DEFAULT 0;

-- Existing rows: `flow:<instance>:<flow>` counts against `instance:<instance>`, every
-- other namespace is its own group (instance ids are UUIDs, without `:`).
UPDATE state SET
    size = length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)),
    quota_group = CASE
        WHEN substr(namespace, 1, 5) = 'flow:'
            THEN 'instance:' || substr(namespace, 6, instr(substr(namespace, 6), ':') - 1)
        ELSE namespace
    END;

CREATE TABLE state_usage (
    tenant_id    TEXT NOT NULL,
    quota_group  TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    keys         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota_group)
);

INSERT INTO state_usage (tenant_id, quota_group, bytes, keys)
    SELECT tenant_id, quota_group, SUM(size), COUNT(*) FROM state GROUP BY tenant_id, quota_group;
INSERT INTO state_usage (tenant_id, quota_group, bytes, keys)
    SELECT tenant_id, '', SUM(size), COUNT(*) FROM state GROUP BY tenant_id;
