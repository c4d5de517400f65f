-- Manual-ack mode (issue "At-least-once consume"): a GET with ack=manual
-- leases the ranges it answers with for a visibility timeout, under a
-- receipt; the client acks, nacks or extends the receipt.
--
-- The lease columns of a cursor row then describe the receipt's range:
-- lease_holder is the receipt id, next_offset..lease_end_offset the range.

ALTER TABLE cursors
    -- The range last delivered and not yet settled (exclusive end), kept
    -- after its lease ends (a nack, an expiry) so that the next lease
    -- delivers the same range again with lease_deliveries + 1. NULL once
    -- the range is settled.
    ADD COLUMN range_end BIGINT,
    -- Offsets at or past next_offset that a partial ack settled: they are
    -- never delivered again, and the cursor moves past them once every
    -- offset below them is settled.
    ADD COLUMN acked_offsets BIGINT[] NOT NULL DEFAULT '{}',
    -- Offsets a nack named while the rest of the receipt stays leased:
    -- an ack of the whole receipt then settles everything but these.
    ADD COLUMN lease_released BIGINT[] NOT NULL DEFAULT '{}',
    -- A nack with a delay: no lease is taken on the partition before this.
    ADD COLUMN available_at TIMESTAMPTZ;

-- One row per manual-mode answer. The receipt a client holds is this id:
-- it is looked up with the tenant and topic of the request, so a forged or
-- foreign receipt is simply not found.
CREATE TABLE receipts (
    id           UUID PRIMARY KEY,
    tenant       TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    group_name   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When the leases end without an ack (moved by extend).
    expires_at   TIMESTAMPTZ NOT NULL,
    -- 'acked' (a repeated ack answers 204 again) or 'released' (a nack:
    -- the messages will be delivered again); NULL while open.
    settled      TEXT CHECK (settled IN ('acked', 'released')),
    settled_at   TIMESTAMPTZ
);
CREATE INDEX receipts_expires_at ON receipts (expires_at);

-- A group's dead-letter policy, set by its tenant: a range delivered more
-- than max_deliveries times is produced to dead_letter_topic (a topic of
-- the same tenant) and committed.
ALTER TABLE consumer_groups
    ADD COLUMN max_deliveries INTEGER CHECK (max_deliveries > 0),
    ADD COLUMN dead_letter_topic TEXT,
    ADD CONSTRAINT consumer_groups_dead_letters
        CHECK ((max_deliveries IS NULL) = (dead_letter_topic IS NULL));
