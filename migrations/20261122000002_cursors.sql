-- Consumer cursors: one row per (tenant, group, topic, partition), holding
-- the next offset to deliver. A GET claims rows with FOR UPDATE SKIP LOCKED
-- inside a short transaction, so any node can serve any GET and two GETs
-- of one group never receive the same message.
CREATE TABLE cursors (
    tenant           TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    group_name       TEXT NOT NULL,
    topic            TEXT NOT NULL,
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    -- The next offset to deliver: everything below it was delivered.
    next_offset      BIGINT NOT NULL CHECK (next_offset >= 0),
    -- Claims take the least recently claimed partition first.
    last_claimed_at  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Manual-ack mode (a later issue): a lease that outlives a request.
    -- While set, offsets next_offset..lease_end_offset are leased to
    -- lease_holder until lease_expires_at (from Postgres now()).
    lease_holder      UUID,
    lease_expires_at  TIMESTAMPTZ,
    lease_end_offset  BIGINT,
    PRIMARY KEY (tenant, group_name, topic, partition),
    CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL)
       AND (lease_holder IS NULL) = (lease_end_offset IS NULL))
);
CREATE INDEX cursors_claim_order ON cursors (tenant, group_name, topic, last_claimed_at);
CREATE INDEX cursors_topic ON cursors (topic);
