-- Self-service topics (issue 16, item 5): a grant's third right, `manage`,
-- lets its user create and delete the tenant's topics under the prefix on
-- the data plane (POST /topics, DELETE /topics/{topic}), within the
-- tenant's topic and partition quotas. Existing grants keep exactly the
-- rights they had.
ALTER TABLE grants ADD COLUMN can_manage BOOLEAN NOT NULL DEFAULT FALSE;

-- A grant must still give something; `manage` alone is enough (a
-- provisioning user that neither reads nor writes).
ALTER TABLE grants DROP CONSTRAINT grants_check;
ALTER TABLE grants ADD CONSTRAINT grants_gives_a_right CHECK (can_read OR can_write OR can_manage);
