//! Integration tests: everything runs against the simulator over real HTTP on loopback.

#[macro_use]
mod common;

mod audit_logs;
mod benchmark;
mod budget;
mod certificates;
mod check;
mod cli;
mod connections;
mod dml;
mod hardening;
mod openapi;
mod permissions;
mod read;
mod serve;
mod serve_clients;
mod serve_limits;
mod sim;
mod trust;
mod trust_cli;
mod values;
mod write;
mod zones;
