-- EdgeOpt store, PostgreSQL, version 1: experiments, jobs, events, tokens and blobs (bytea in
-- chunks, so a worker on another machine needs nothing but the database URL).

-- Leases are timed by the database's clock, not the workers': machines' clocks may disagree.
CREATE FUNCTION edgeopt_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE experiments (
  id         text PRIMARY KEY,
  owner      text NOT NULL,
  name       text NOT NULL,
  status     text NOT NULL CHECK (status IN ('created', 'queued', 'running', 'completed', 'failed', 'cancelled')),
  config     jsonb NOT NULL,
  model      jsonb NOT NULL,
  dataset    jsonb NOT NULL,
  results    jsonb NOT NULL,
  error      text NOT NULL,
  progress   double precision NOT NULL,
  last_seq   bigint NOT NULL DEFAULT 0,  -- seq of the newest event; append_event bumps it under the row lock
  created_ms bigint NOT NULL,
  updated_ms bigint NOT NULL
);
CREATE INDEX experiments_by_time ON experiments (created_ms DESC, id DESC);
CREATE INDEX experiments_by_owner ON experiments (owner, created_ms DESC, id DESC);

CREATE TABLE jobs (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  experiment_id    text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  kind             text NOT NULL CHECK (kind IN ('baseline', 'technique', 'final')),
  technique        text NOT NULL,
  phase            integer NOT NULL,
  status           text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  worker           text NOT NULL,
  attempts         integer NOT NULL,
  lease_expires_ms bigint NOT NULL,
  result           jsonb NOT NULL,
  error            text NOT NULL,
  created_ms       bigint NOT NULL,
  updated_ms       bigint NOT NULL
);
-- claim_job scans queued and running jobs oldest first; finished ones stay out of the index.
CREATE INDEX jobs_claimable ON jobs (id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_experiment ON jobs (experiment_id, phase);

CREATE TABLE events (
  experiment_id text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  seq           bigint NOT NULL,
  type          text NOT NULL,
  data          jsonb NOT NULL,
  time_ms       bigint NOT NULL,
  PRIMARY KEY (experiment_id, seq)
);

CREATE TABLE tokens (
  name       text PRIMARY KEY,
  hash_hex   text NOT NULL UNIQUE,
  created_ms bigint NOT NULL
);

-- Byte-order keys ("C"), so prefix listing sorts like the SQLite backend's file names.
CREATE TABLE blobs (
  key        text COLLATE "C" PRIMARY KEY,
  size       bigint NOT NULL,
  chunks     integer NOT NULL,
  created_ms bigint NOT NULL
);
CREATE TABLE blob_chunks (
  key  text COLLATE "C" NOT NULL REFERENCES blobs (key) ON DELETE CASCADE,
  idx  integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (key, idx)
);
-- Models and archives barely compress; skip TOAST's compression attempt.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
