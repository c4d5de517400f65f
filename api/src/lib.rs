//! sluice: a multi-tenant HTTPS queue service in front of Kafka.
//!
//! The library holds everything the `sluice` binary runs, so that the tests
//! can start the real server in-process on a free port.

pub mod admin;
pub mod auth;
pub mod body_deadline;
pub mod cli;
pub mod compression;
pub mod config;
pub mod connections;
pub mod consume;
pub mod encoding;
pub mod error;
pub mod groups;
pub mod kafka;
pub mod keep_alive;
pub mod me;
pub mod metrics;
pub mod name_schemas;
pub mod notices;
pub mod openapi;
pub mod produce;
pub mod ratelimit;
pub mod request_id;
pub mod routes;
pub mod setting;
pub mod shutdown;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod tls;
pub mod topics;
