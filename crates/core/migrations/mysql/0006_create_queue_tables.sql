-- The `queue` workload's tables (`racelab lab --workload queue`): a run's queue of jobs, which workers
-- claim oldest first and run, each run recorded, so a job run twice is visible in the database.
--
-- job_queues: one row per run (its key keeps runs on one database apart).
CREATE TABLE IF NOT EXISTS job_queues (
    id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    jobs BIGINT NOT NULL
) ENGINE = InnoDB;

-- queue_jobs: a queue's jobs; `state` 0 pending, 1 claimed, 2 done.
CREATE TABLE IF NOT EXISTS queue_jobs (
    id    BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue BIGINT NOT NULL,
    state BIGINT NOT NULL,
    KEY queue_jobs_pending (queue, state, id)
) ENGINE = InnoDB;

-- queue_runs: one row per execution of a job.
CREATE TABLE IF NOT EXISTS queue_runs (
    id  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job BIGINT NOT NULL,
    KEY queue_runs_job (job)
) ENGINE = InnoDB;
