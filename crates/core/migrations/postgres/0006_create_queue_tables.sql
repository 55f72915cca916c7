-- The `queue` workload's tables (`racelab lab --workload queue`): a run's queue of jobs, which workers
-- claim oldest first and run, each run recorded, so a job run twice is visible in the database.
--
-- job_queues: one row per run (its key keeps runs on one database apart).
CREATE TABLE IF NOT EXISTS job_queues (
    id   BIGSERIAL PRIMARY KEY,
    jobs BIGINT NOT NULL
);

-- queue_jobs: a queue's jobs; `state` 0 pending, 1 claimed, 2 done.
CREATE TABLE IF NOT EXISTS queue_jobs (
    id    BIGSERIAL PRIMARY KEY,
    queue BIGINT NOT NULL,
    state BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_jobs_pending ON queue_jobs (queue, state, id);

-- queue_runs: one row per execution of a job.
CREATE TABLE IF NOT EXISTS queue_runs (
    id  BIGSERIAL PRIMARY KEY,
    job BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_runs_job ON queue_runs (job);
