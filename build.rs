//! Rebuilds the crate when anything under `static/` changes, a new file included: the
//! pages are embedded by `src/pages.rs`, and rust-embed alone tracks only the files that
//! existed at the last build.

fn main() {
    println!("cargo::rerun-if-changed=static");
}
