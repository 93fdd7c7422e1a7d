//! The abacus over HTTP. Every case runs against the in-memory store and, when
//! FLOODGATE_TEST_REDIS_URL is set, against Redis (each node with its own connection), and
//! when FLOODGATE_TEST_REDIS_CLUSTER_URL is set, against Redis Cluster.
//! Keys carry a per-test prefix, so the Redis cases run in parallel on one server.

mod cases;
mod common;

floodgate_testkit::per_backend! {
    memory => Some(crate::common::Env::memory()),
    redis => crate::common::Env::redis(),
    redis_cluster => crate::common::Env::redis_cluster();
    [
        add_get_and_reset,
        bad_numbers_are_400,
        overflow_is_400_and_changes_nothing,
        auth_statuses,
        auth_off_needs_no_key,
        body_over_limit_is_413,
        idempotency_key_rules,
        replay_returns_the_original_response,
        idempotency_is_scoped_per_api_key_and_route,
        concurrent_duplicates_apply_once,
        rate_limit_refuses_with_headers,
        rate_limit_per_client_address_without_auth,
        rate_limit_holds_across_two_nodes,
        rate_limit_on_writes_counts_as_if_checked_first,
        store_outage_is_503_and_retry_applies_once,
        two_nodes_exact_sum_under_faults,
    ]
}
