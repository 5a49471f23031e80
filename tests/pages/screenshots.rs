//! The README's screenshots stay true to the pages: they are regenerated from the browser
//! suite by `scripts/screenshots.sh`, which records in `docs/screenshots/MANIFEST` the
//! hash of the `static/` tree the run served and the hash of each picture. This test
//! fails when the pages changed since (the pictures would show an older page), when a
//! picture differs from the one recorded, or when the README shows a picture that no run
//! produced.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, as paths relative to the root, but `static/examples/vendor/`
/// (a git-ignored local copy of ArtPlayer; `scripts/static-hash.sh` skips it too).
fn files(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        if path.ends_with("static/examples/vendor") {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else {
            let rel = path.strip_prefix(root()).expect("under the root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Hex sha256.
fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash `scripts/static-hash.sh` prints: sha256 of "<file sha256>  <path>\n" lines
/// in byte order of the paths.
fn static_hash() -> String {
    let mut paths = Vec::new();
    files(&root().join("static"), &mut paths);
    paths.sort();
    let mut listing = String::new();
    for p in paths {
        let data = std::fs::read(root().join(&p)).expect("readable file");
        listing.push_str(&format!("{}  {p}\n", hex(&data)));
    }
    hex(listing.as_bytes())
}

#[test]
fn the_readme_screenshots_show_the_pages_as_they_are() {
    let manifest = std::fs::read_to_string(root().join("docs/screenshots/MANIFEST"))
        .expect("docs/screenshots/MANIFEST exists (scripts/screenshots.sh writes it)");
    let mut recorded_static = None;
    let mut pictures = Vec::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["static", hash] => recorded_static = Some(hash.to_string()),
            ["picture", name, hash, "from", _shot] => {
                pictures.push((name.to_string(), hash.to_string()))
            }
            _ => panic!("MANIFEST: unreadable line {line:?}"),
        }
    }
    let stale = "run scripts/screenshots.sh to take the README's screenshots again";
    assert_eq!(
        recorded_static.as_deref(),
        Some(static_hash().as_str()),
        "static/ changed since the screenshots were taken: {stale}"
    );
    for (name, hash) in &pictures {
        let data = std::fs::read(root().join("docs/screenshots").join(name))
            .unwrap_or_else(|e| panic!("docs/screenshots/{name}: {e}"));
        assert_eq!(
            &hex(&data),
            hash,
            "docs/screenshots/{name} is not the recorded shot: {stale}"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for shown in readme.split("docs/screenshots/").skip(1) {
        let name: String = shown
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if !name.ends_with(".png") {
            continue;
        }
        assert!(
            pictures.iter().any(|(p, _)| *p == name),
            "the README shows docs/screenshots/{name}, which no screenshot run produced: {stale}"
        );
    }
}
