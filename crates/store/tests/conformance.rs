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
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = crate::common::memory_store();
                    crate::cases::$case(store, crate::common::prefix()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(store) = crate::common::redis_store().await else {
                        return;
                    };
                    crate::cases::$case(store, crate::common::prefix()).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(store) = crate::common::redis_cluster_store().await else {
                        return;
                    };
                    crate::cases::$case(store, crate::common::prefix()).await;
                }
            )*
        }
    };
}

conformance!(
    get_set_del,
    set_nx_only_when_absent,
    ttl_expiry,
    compare_and_set_rules,
    compare_and_set_race,
    counter_reads_as_text,
    incr_by_exact_at_edges,
    wrong_types,
    idempotent_outcomes,
    idempotent_exact_large_values,
    idempotent_concurrent_applies_once,
    idempotent_record_expires,
    lease_capacity_under_contention,
    lease_release_frees_slot,
    lease_expiry_frees_slot,
    lease_holders_are_the_live_leases,
    rate_limit_burst_exact,
    rate_limit_retry_after_is_enough,
    rate_limit_no_double_burst,
    rate_limit_strict_in_any_window,
    rate_limit_keys_and_zero_limit,
    limited_apply_counts_every_call_and_applies_once,
    limited_apply_shares_its_log_and_figures,
    limited_apply_concurrent_admits_exactly_the_limit,
);
