-- claim_job's phase gate (open jobs of one experiment) and its search for expired leases skip
-- finished jobs, which are the bulk of the table over time. (jobs_claimable exists since 0001.)
CREATE INDEX jobs_open_by_experiment ON jobs (experiment_id, phase) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_running_leases ON jobs (lease_expires_ms) WHERE status = 'running';
