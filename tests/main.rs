//! One integration-test binary (fast links on small machines). Every test starts the real
//! server on `127.0.0.1:0` and talks to it over real sockets.

mod abuse;
mod api;
mod auth;
mod authz_prop;
mod bench;
mod cluster;
mod common;
mod danmaku;
mod fanout;
mod forwarded;
mod inputs;
mod layering;
mod limits;
mod matrix;
mod moderation;
mod pages;
mod process;
mod recovery;
mod schedules;
mod slow;
mod ws;
