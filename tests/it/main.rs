//! Integration tests: everything runs against the simulator over real HTTP on loopback.

mod common;
mod read;
mod write;
mod cli;
mod openapi;
mod sim;
