-- Live sluice nodes. Each node upserts its row every second; a node unseen
-- for a few seconds no longer counts, so every node can enforce 1/N of each
-- tenant's quota and the cluster as a whole enforces the quota.
CREATE TABLE nodes (
    id         UUID PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX nodes_last_seen ON nodes (last_seen);
