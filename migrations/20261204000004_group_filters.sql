-- Group filters (issue "Produce and consume completeness", item 3): a
-- tenant's group may carry, per topic it reads, a filter (Camunda's
-- activation condition). Messages that do not match are read and skipped
-- for that group: its cursor moves past them.
--
-- Per (group, topic) rather than per group, because a filter names the
-- fields of one topic's messages, and the route that sets it is
-- `PUT /topic/{topic}/groups/{group}`. The text is stored as the tenant
-- wrote it (the node parses it, and checked it before storing it).
CREATE TABLE group_filters (
    tenant      TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    topic       TEXT NOT NULL REFERENCES topics (name) ON DELETE CASCADE,
    filter      TEXT NOT NULL CHECK (length(filter) BETWEEN 1 AND 1024),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, group_name, topic),
    FOREIGN KEY (tenant, group_name)
        REFERENCES consumer_groups (tenant, group_name) ON DELETE CASCADE
);
