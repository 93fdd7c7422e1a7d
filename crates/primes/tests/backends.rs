//! The behavioural cases on each backend set: embedded (memory store, in-process bus) and
//! distributed (Redis + Kafka, skipped unless FLOODGATE_TEST_REDIS_URL and
//! FLOODGATE_TEST_KAFKA_BROKERS are set).

mod cases;
mod common;

floodgate_testkit::per_backend! {
    embedded => Some(crate::common::Setup::embedded()),
    distributed => crate::common::Setup::distributed().await;
    [
        submit_then_poll_returns_the_primes,
        a_job_is_pending_until_a_worker_runs_it,
        invalid_requests_are_refused,
        a_burst_of_jobs_all_complete,
        records_expire_after_the_ttl,
        a_job_of_a_killed_worker_is_redelivered,
        a_full_queue_answers_503_until_jobs_finish,
        a_poison_message_is_skipped,
        stop_waits_for_running_jobs,
        stop_abandons_a_stuck_job_for_redelivery,
    ]
}
