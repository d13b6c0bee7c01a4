-- Webhook outbox (written in the same transaction as the job's state change) and idempotent
-- submits.

CREATE TABLE webhook_outbox (
    -- The notification_id: a ULID, so ids sort by creation.
    id               TEXT PRIMARY KEY,
    process_id       TEXT NOT NULL,
    key_id           INTEGER NOT NULL,
    url              TEXT NOT NULL,
    status           TEXT NOT NULL,
    progress         INTEGER NOT NULL,
    creation_ms      INTEGER NOT NULL,
    modification_ms  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dropped', 'exhausted')),
    last_error       TEXT
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_ms);
CREATE INDEX webhook_outbox_by_job ON webhook_outbox (process_id, state, id);

CREATE TABLE idempotency_keys (
    key_id        INTEGER NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
