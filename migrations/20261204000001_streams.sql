-- Open SSE and WebSocket streams a tenant may hold at once over the
-- cluster (each live node admits its share, like the other quotas): a
-- stream keeps a connection, a task and a little memory for as long as the
-- client likes, so one tenant's streams must not take a node's every one.
ALTER TABLE quotas
    ADD COLUMN max_streams INTEGER NOT NULL DEFAULT 100 CHECK (max_streams > 0);
