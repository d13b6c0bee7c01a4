-- lucid's PostgreSQL schema: the SQLite schema's tables and columns, with PostgreSQL's types.
-- Times are Unix milliseconds. Ids are text in the "C" collation, so UUIDv7 text order is
-- creation order as in SQLite.

CREATE TABLE api_keys (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    -- SHA-256 of the key, hex; the plain key is shown once and never stored.
    digest          TEXT NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    unlimited       BOOLEAN NOT NULL DEFAULT FALSE,
    -- Credits owned, including the reserved ones; spent credits are subtracted at completion.
    balance         BIGINT NOT NULL DEFAULT 0,
    reserved        BIGINT NOT NULL DEFAULT 0,
    revoked         BOOLEAN NOT NULL DEFAULT FALSE,
    webhook_secret  TEXT,
    created_ms      BIGINT NOT NULL,
    CHECK (reserved >= 0),
    CHECK (unlimited OR reserved <= balance)
);

CREATE TABLE sources (
    id          TEXT COLLATE "C" PRIMARY KEY,
    key_id      BIGINT NOT NULL REFERENCES api_keys(id),
    filename    TEXT NOT NULL,
    format      TEXT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE jobs (
    id                TEXT COLLATE "C" PRIMARY KEY,
    key_id            BIGINT NOT NULL REFERENCES api_keys(id),
    source_id         TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('Pending', 'Processing', 'Completed', 'Failed', 'Cancelled')),
    progress          BIGINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    filename          TEXT NOT NULL,
    input_format      TEXT NOT NULL,
    input_width       BIGINT NOT NULL,
    input_height      BIGINT NOT NULL,
    output_format     TEXT NOT NULL,
    output_width      BIGINT NOT NULL,
    output_height     BIGINT NOT NULL,
    crop_to_fill      BOOLEAN NOT NULL,
    options_json      TEXT NOT NULL,
    credits           BIGINT NOT NULL,
    -- True once the credits were taken from the balance; only Completed jobs are charged.
    charged           BOOLEAN NOT NULL DEFAULT FALSE CHECK (NOT charged OR state = 'Completed'),
    sync              BOOLEAN NOT NULL DEFAULT FALSE,
    work_secs         DOUBLE PRECISION NOT NULL,
    eta               BIGINT NOT NULL,
    created_ms        BIGINT NOT NULL,
    modified_ms       BIGINT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_ms  BIGINT,
    error             TEXT,
    webhook_url       TEXT,
    -- Only a Processing job has a lease.
    CHECK ((state = 'Processing') = (lease_owner IS NOT NULL))
);

CREATE INDEX jobs_by_key ON jobs (key_id, id);
CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL
);

CREATE TABLE webhook_outbox (
    -- The notification_id: a ULID.
    id               TEXT COLLATE "C" PRIMARY KEY,
    -- Write order: a job's rows are written while its row is locked, so for one job this is
    -- commit order even when several nodes' clocks disagree.
    seq              BIGSERIAL NOT NULL,
    process_id       TEXT NOT NULL,
    key_id           BIGINT NOT NULL,
    url              TEXT NOT NULL,
    status           TEXT NOT NULL,
    progress         BIGINT NOT NULL,
    creation_ms      BIGINT NOT NULL,
    modification_ms  BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dropped', 'exhausted')),
    last_error       TEXT
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_ms);
CREATE INDEX webhook_outbox_by_job ON webhook_outbox (process_id, state, seq);

CREATE TABLE idempotency_keys (
    key_id        BIGINT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
