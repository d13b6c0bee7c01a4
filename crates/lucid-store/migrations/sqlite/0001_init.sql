-- lucid's embedded schema. Times are Unix milliseconds.

CREATE TABLE api_keys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    -- SHA-256 of the key, hex; the plain key is shown once and never stored.
    digest          TEXT NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    unlimited       INTEGER NOT NULL DEFAULT 0,
    -- Credits owned, including the reserved ones; spent credits are subtracted at completion.
    balance         INTEGER NOT NULL DEFAULT 0,
    reserved        INTEGER NOT NULL DEFAULT 0,
    revoked         INTEGER NOT NULL DEFAULT 0,
    webhook_secret  TEXT,
    created_ms      INTEGER NOT NULL,
    CHECK (reserved >= 0),
    CHECK (unlimited = 1 OR reserved <= balance)
);

CREATE TABLE sources (
    id          TEXT PRIMARY KEY,
    key_id      INTEGER NOT NULL REFERENCES api_keys(id),
    filename    TEXT NOT NULL,
    format      TEXT NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE jobs (
    -- UUIDv7, hyphenated lower-case: text order is creation order.
    id                TEXT PRIMARY KEY,
    key_id            INTEGER NOT NULL REFERENCES api_keys(id),
    source_id         TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('Pending', 'Processing', 'Completed', 'Failed', 'Cancelled')),
    progress          INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    filename          TEXT NOT NULL,
    input_format      TEXT NOT NULL,
    input_width       INTEGER NOT NULL,
    input_height      INTEGER NOT NULL,
    output_format     TEXT NOT NULL,
    output_width      INTEGER NOT NULL,
    output_height     INTEGER NOT NULL,
    crop_to_fill      INTEGER NOT NULL,
    options_json      TEXT NOT NULL,
    credits           INTEGER NOT NULL,
    -- 1 once the credits were taken from the balance; only Completed jobs are charged.
    charged           INTEGER NOT NULL DEFAULT 0 CHECK (charged = 0 OR state = 'Completed'),
    sync              INTEGER NOT NULL DEFAULT 0,
    work_secs         REAL NOT NULL,
    eta               INTEGER NOT NULL,
    created_ms        INTEGER NOT NULL,
    modified_ms       INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_ms  INTEGER,
    error             TEXT,
    webhook_url       TEXT,
    -- Only a Processing job has a lease.
    CHECK ((state = 'Processing') = (lease_owner IS NOT NULL))
);

CREATE INDEX jobs_by_key ON jobs (key_id, id);
CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
