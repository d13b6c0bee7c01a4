-- Per-key request rate limits shared by every API node (GCRA): the theoretical arrival time of
-- the key's next request, in microseconds of the database server's clock.
CREATE TABLE rate_limits (
    key_id  BIGINT PRIMARY KEY,
    tat_us  BIGINT NOT NULL
);
