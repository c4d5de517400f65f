-- Tenancy: tenants and their quotas, users, topic-prefix grants, the topics
-- sluice manages, and the append-only audit log.

CREATE TABLE tenants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per tenant. Kept apart from `tenants` so that quota changes (which
-- every node must pick up) are a narrow, separately auditable update.
CREATE TABLE quotas (
    tenant_id            BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    requests_per_second  INTEGER NOT NULL CHECK (requests_per_second > 0),
    bytes_per_second     BIGINT  NOT NULL CHECK (bytes_per_second > 0),
    burst_seconds        INTEGER NOT NULL CHECK (burst_seconds > 0),
    max_topics           INTEGER NOT NULL CHECK (max_topics >= 0),
    max_partitions       INTEGER NOT NULL CHECK (max_partitions >= 0),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
    name                 TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; the plaintext is never stored.
    password_hash        TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_tenant_id ON users (tenant_id);

CREATE TABLE grants (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,
    can_read    BOOLEAN NOT NULL,
    can_write   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, prefix),
    CHECK (can_read OR can_write)
);

-- Topics created through sluice, so that per-tenant topic and partition
-- quotas can be enforced and a tenant with topics cannot be deleted by accident.
CREATE TABLE topics (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
    name        TEXT PRIMARY KEY,
    partitions  INTEGER NOT NULL CHECK (partitions > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX topics_tenant_id ON topics (tenant_id);

-- Append-only record of every change made through the admin plane. It holds
-- names and non-secret parameters only: never a password or a token.
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    tenant   TEXT,
    target   TEXT NOT NULL,
    details  JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at);
CREATE INDEX audit_log_at ON audit_log (at);
