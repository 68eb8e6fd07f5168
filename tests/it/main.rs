//! One integration-test binary: the gateway against real upstreams on loopback, real
//! PostgreSQL and MariaDB, and the data-driven case folders in tests/cases/.

mod access;
mod alerts;
mod alerts_live;
mod alerts_shared;
mod audit;
mod backends;
mod blog;
mod bounds;
mod cases;
mod check;
mod cli;
mod complaints;
mod conformance;
mod dashboard;
mod execution;
mod fuzz;
mod hangups;
mod harness;
mod hostile;
mod http_spec;
mod injection;
mod limits;
mod live;
mod logs;
mod outbox;
mod pages;
mod partial;
mod queries;
mod resilience;
mod schemas;
mod security;
mod source_faults;
mod spreadsheets;
mod uploads;
mod views;
