-- EdgeOpt store, SQLite, version 1: experiments, jobs, events, tokens. Blobs are files under
-- <store>/blobs/, not rows. JSON columns hold text (never NULL: a JSON null is the text 'null').
CREATE TABLE experiments (
  id         TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  name       TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('created', 'queued', 'running', 'completed', 'failed', 'cancelled')),
  config     TEXT NOT NULL,
  model      TEXT NOT NULL,
  dataset    TEXT NOT NULL,
  results    TEXT NOT NULL,
  error      TEXT NOT NULL,
  progress   REAL NOT NULL,
  last_seq   INTEGER NOT NULL DEFAULT 0,  -- seq of the newest event; append_event bumps it
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX experiments_by_time ON experiments (created_ms DESC, id DESC);
CREATE INDEX experiments_by_owner ON experiments (owner, created_ms DESC, id DESC);

CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so "oldest" is the smallest id
  experiment_id    TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  kind             TEXT NOT NULL CHECK (kind IN ('baseline', 'technique', 'final')),
  technique        TEXT NOT NULL,
  phase            INTEGER NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  worker           TEXT NOT NULL,
  attempts         INTEGER NOT NULL,
  lease_expires_ms INTEGER NOT NULL,
  result           TEXT NOT NULL,
  error            TEXT NOT NULL,
  created_ms       INTEGER NOT NULL,
  updated_ms       INTEGER NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_experiment ON jobs (experiment_id, phase);

CREATE TABLE events (
  experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  type          TEXT NOT NULL,
  data          TEXT NOT NULL,
  time_ms       INTEGER NOT NULL,
  PRIMARY KEY (experiment_id, seq)
) WITHOUT ROWID;

CREATE TABLE tokens (
  name       TEXT PRIMARY KEY,
  hash_hex   TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL
);
