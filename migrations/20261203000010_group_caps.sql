-- Per-tenant caps on shared resources: how many consumer groups a tenant
-- may have, and how many consumes it may run at once (split between the
-- live nodes like the rates).
ALTER TABLE quotas
    ADD COLUMN max_groups INTEGER NOT NULL DEFAULT 100 CHECK (max_groups >= 0),
    ADD COLUMN max_concurrent_consumes INTEGER NOT NULL DEFAULT 32 CHECK (max_concurrent_consumes > 0);

-- One row per (tenant, group): what `max_groups` counts, and when the group
-- was last used, so that groups unused for `consume.group_retention_days`
-- can be removed. A GET registers its group here before any cursor row of
-- it exists; a group's cursor rows without a row here are leftovers of a
-- removal and are swept.
CREATE TABLE consumer_groups (
    tenant        TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    group_name    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Refreshed by GETs of the group, at most about once a minute per node.
    last_used_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, group_name)
);
CREATE INDEX consumer_groups_last_used_at ON consumer_groups (last_used_at);

-- Groups that already have cursors start their retention clock now.
INSERT INTO consumer_groups (tenant, group_name)
SELECT DISTINCT tenant, group_name FROM cursors
ON CONFLICT DO NOTHING;
