-- Idempotency-Key on produce (issue 16, item 1): one row per (tenant, key).
--
-- A row is claimed by the request that inserts it (INSERT … ON CONFLICT),
-- so that several stateless nodes agree on who produces. While a produce
-- is in flight, `claim` names it and `claimed_until` bounds it: a node that
-- dies holding a claim blocks the key only until then. A final answer (2xx
-- or 4xx) is kept in `status` and `response` until `expires_at`. A 503 or
-- 504 releases the claim and keeps, in `stored`, the offsets of the
-- messages Kafka did acknowledge, so that a retry sends only the rest.
CREATE TABLE idempotency_keys (
    tenant         TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    -- SHA-256 of the topic, the query that shapes the batch and the body.
    request_hash   BYTEA NOT NULL,
    claim          UUID,
    claimed_until  TIMESTAMPTZ,
    -- The recorded final answer; NULL while none is.
    status         SMALLINT,
    response       BYTEA,
    -- After a 503/504: JSON array, one entry per message, [partition,
    -- offset] where Kafka acknowledged it and null where it did not.
    stored         BYTEA,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
-- The per-tenant cap evicts a tenant's oldest keys first.
CREATE INDEX idempotency_keys_tenant_created ON idempotency_keys (tenant, created_at);
