//! Integration tests: everything runs against the simulator over real HTTP on loopback.

mod budget;
mod check;
mod cli;
mod common;
mod dml;
mod hardening;
mod openapi;
mod read;
mod sim;
mod trust;
mod trust_cli;
mod write;
