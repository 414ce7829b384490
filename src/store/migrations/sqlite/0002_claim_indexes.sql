-- claim_job's scans (the oldest open job, the phase gate within an experiment, expired leases) skip
-- finished jobs, which are the bulk of the table over time.
DROP INDEX jobs_by_status;
CREATE INDEX jobs_claimable ON jobs (id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_open_by_experiment ON jobs (experiment_id, phase) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_running_leases ON jobs (lease_expires_ms) WHERE status = 'running';
