//! End-to-end tests: each starts the real server on free ports with its own
//! Postgres database and talks to it over real sockets.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod admin_auth;
mod audit;
mod cli;
mod config;
mod grants;
mod helpers;
mod tenants;
mod users;
