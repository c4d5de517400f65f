-- Claims become leases (issue "Isolation II"): a GET marks the partitions it
-- claims with a holder, an expiry taken from Postgres now() and the end of
-- the leased range, in one short statement, and holds no transaction or
-- connection while it reads Kafka. A short conditional update then moves
-- the cursor and clears the lease, only if the lease is still the GET's.
-- A node that dies mid-read leaves a lease that expires; the next GET takes
-- the partition over and reads the same messages.
--
-- The lease columns themselves (lease_holder, lease_expires_at,
-- lease_end_offset) were reserved by the cursors migration.

-- How many times the range next_offset..lease_end_offset has been leased
-- without being committed: 1 for a first delivery, more after a lease
-- expired. Zero while no lease is set. Manual-ack mode reports it as
-- "Deliveries" and sends a range past max_deliveries to the dead letters.
ALTER TABLE cursors
    ADD COLUMN lease_deliveries INTEGER NOT NULL DEFAULT 0 CHECK (lease_deliveries >= 0);

-- Claims take the least recently *read* partition first: a partition is
-- stamped only when a GET actually read it, never merely for being
-- claimed, so a partition leased but not reached is not pushed back.
ALTER TABLE cursors RENAME COLUMN last_claimed_at TO last_read_at;
ALTER INDEX cursors_claim_order RENAME TO cursors_read_order;

-- A group reset (and, later, a seek) in progress: no new lease is taken
-- until then, while the leases in flight end; the reset then moves the
-- cursors and clears it. It expires on its own if the resetting node dies.
ALTER TABLE cursors ADD COLUMN fenced_until TIMESTAMPTZ;

-- Expired leases are found by time (and so would a sweeper be).
CREATE INDEX cursors_lease_expiry ON cursors (lease_expires_at) WHERE lease_holder IS NOT NULL;
