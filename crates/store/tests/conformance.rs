//! The same behavioural cases run against every backend: `memory::*` always, `redis::*`
//! when FLOODGATE_TEST_REDIS_URL is set, `redis_cluster::*` when
//! FLOODGATE_TEST_REDIS_CLUSTER_URL is set (3 masters + 3 replicas from scripts/services). Each test uses its own key prefix, so the Redis
//! cases can run in parallel on one server. `outage::*` starts its own redis-server.

mod cases;
mod common;
mod outage;

/// Instantiates each case once per backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        backend!(memory, Some(crate::common::memory_store()), $($case),*);
        backend!(redis, crate::common::redis_store().await, $($case),*);
        backend!(redis_cluster, crate::common::redis_cluster_store().await, $($case),*);
    };
}

/// The cases on one backend; a backend whose variable is unset skips them.
macro_rules! backend {
    ($backend:ident, $store:expr, $($case:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(store) = $store else {
                        return;
                    };
                    crate::cases::$case(store, crate::common::prefix()).await;
                }
            )*
        }
    };
}

conformance!(
    // Kv: bytes (cases/kv.rs) and counters (cases/counters.rs)
    get_set_del,
    set_nx_only_when_absent,
    ttl_expiry,
    compare_and_set_rules,
    compare_and_set_race,
    counter_reads_as_text,
    incr_by_exact_at_edges,
    wrong_types,
    // idempotency/ (cases/idempotency.rs)
    idempotent_outcomes,
    idempotent_exact_large_values,
    idempotent_concurrent_applies_once,
    idempotent_record_expires,
    // lease/ (cases/leases.rs)
    lease_capacity_under_contention,
    lease_release_frees_slot,
    lease_expiry_frees_slot,
    lease_holders_are_the_live_leases,
    // rate_limit/: the limiter (cases/rate.rs) and the limit in front of an apply
    // (cases/limited.rs)
    rate_limit_burst_exact,
    rate_limit_retry_after_is_enough,
    rate_limit_no_double_burst,
    rate_limit_strict_in_any_window,
    rate_limit_keys_and_zero_limit,
    limited_apply_counts_every_call_and_applies_once,
    limited_apply_shares_its_log_and_figures,
    limited_apply_concurrent_admits_exactly_the_limit,
);
