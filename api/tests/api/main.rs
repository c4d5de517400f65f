//! End-to-end tests: each starts the real server on free ports with its own
//! Postgres database and talks to it over real sockets.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod admin_auth;
mod audit;
mod broker_down;
mod change_listener;
mod cli;
mod compression;
mod config;
mod consume;
mod consume_faults;
mod consume_leases;
mod data_auth;
mod dead_letters;
mod docs;
mod filter_isolation;
mod front_door;
mod grants;
mod group_caps;
mod group_filters;
mod groups;
mod helpers;
mod idempotency;
mod imported_credentials;
mod json_values;
mod loadtest_smoke;
mod login_isolation;
mod logs;
mod manual_ack_checker;
mod metrics;
mod mirror;
mod native_headers;
mod openapi;
mod postgres_down;
mod produce;
mod produce_errors;
mod rate_limits;
mod readiness;
mod receipt_isolation;
mod receipts;
mod self_service_topics;
mod shutdown;
mod stream_faults;
mod stream_isolation;
mod streams;
mod tenant_groups;
mod tenants;
mod tls;
mod topic_isolation;
mod topic_lifecycle;
mod topics;
mod users;
