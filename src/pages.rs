//! The browser pages: every file of `static/`, embedded in the binary when it is built,
//! or read from the folder named by `DANMAKU_STATIC_DIR` when that is set (development:
//! an edit shows on reload, no rebuild). This module owns where a page comes from and
//! how it is answered over HTTP: content types, validators (`ETag`, `Last-Modified`) and
//! 304s, `Cache-Control`, byte ranges (206, 416), `HEAD`, refusing paths that would leave
//! the folder, and the security headers of every page (CSP, `nosniff`). Which URL serves
//! which file is declared by `server`'s route table.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use poem::{
    Body, Endpoint, Request, Response, Result,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};
use rust_embed::Embed;
use sha2::{Digest, Sha256};

use crate::api::error::json_error;

/// The policy of the static pages: scripts only from this origin (no inline script, no
/// `eval`), no plugins, no framing by other sites. Videos may come from any https URL
/// (the page plays `?src=`).
pub const STATIC_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; media-src 'self' https: blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; \
frame-ancestors 'self'; form-action 'self'";

/// The policy of `/examples/` (pages that embed third-party players we do not change):
/// the static one plus what ArtPlayer 5 and its danmaku plugin need to run. ArtPlayer
/// injects a `<style>` element and its templates carry `style` attributes
/// (`'unsafe-inline'` styles; scripts stay `'self'` only), and the plugin lays comments
/// out in a Web Worker it starts from a `blob:` URL (`worker-src blob:`).
pub const EXAMPLES_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; media-src 'self' https: blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; \
object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'";

/// The policy of a file (its cleaned relative path, `None` when there is none): the
/// relaxed one only for files under `examples/`, the strict one for everything else.
fn csp_for(rel: Option<&str>) -> &'static str {
    match rel {
        Some(rel) if rel.starts_with("examples/") => EXAMPLES_CSP,
        _ => STATIC_CSP,
    }
}

/// `static/` as it was at build time. With `debug-embed` on, debug builds embed too, so
/// the binary the tests run carries its pages exactly as a release build does (without
/// it rust-embed would read the source tree at run time and hide a missing file).
#[derive(Embed)]
#[folder = "static/"]
struct Embedded;

/// Where the pages are read from, chosen once at startup.
#[derive(Debug, Clone)]
pub enum Source {
    /// The copy inside the binary: what a deployed server serves.
    Embedded,
    /// A folder on disk (`DANMAKU_STATIC_DIR`), read on every request.
    Disk(PathBuf),
}

impl Source {
    /// `DANMAKU_STATIC_DIR` when set and not empty, else the embedded copy.
    pub fn from_env() -> Source {
        match std::env::var_os("DANMAKU_STATIC_DIR") {
            Some(dir) if !dir.is_empty() => Source::Disk(dir.into()),
            _ => Source::Embedded,
        }
    }

    /// For the startup log line: which copy of the pages is being served.
    pub fn describe(&self) -> String {
        match self {
            Source::Embedded => format!("embedded ({} files)", Embedded::iter().count()),
            Source::Disk(dir) => dir.display().to_string(),
        }
    }

    /// The file at the cleaned relative path `rel`, or `None` when there is none.
    async fn load(&self, rel: &str) -> Option<File> {
        match self {
            Source::Embedded => {
                let file = Embedded::get(rel)?;
                let data = match file.data {
                    std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
                    std::borrow::Cow::Owned(v) => Bytes::from(v),
                };
                Some(File {
                    data,
                    etag: format!("\"{}\"", hex::encode(file.metadata.sha256_hash())),
                    modified: file
                        .metadata
                        .last_modified()
                        .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                })
            }
            Source::Disk(root) => load_disk(root, rel).await,
        }
    }
}

/// Reads `rel` under `root`. The path is already free of `..`; the canonical check also
/// stops a symbolic link inside the folder from pointing out of it.
async fn load_disk(root: &Path, rel: &str) -> Option<File> {
    let read = async {
        let base = tokio::fs::canonicalize(root).await?;
        let real = tokio::fs::canonicalize(root.join(rel)).await?;
        if !real.starts_with(&base) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        let meta = tokio::fs::metadata(&real).await?;
        if !meta.is_file() {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        let data = tokio::fs::read(&real).await?;
        Ok::<_, std::io::Error>((data, meta.modified().ok()))
    };
    match read.await {
        Ok((data, modified)) => Some(File {
            etag: format!("\"{}\"", hex::encode(Sha256::digest(&data))),
            data: Bytes::from(data),
            modified,
        }),
        Err(e) => {
            // A missing file is the client's 404; anything else is worth a line.
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = rel, error = %e, "cannot read a page from disk");
            }
            None
        }
    }
}

/// One file ready to answer with: its bytes and validators.
struct File {
    data: Bytes,
    /// Strong and quoted: the sha256 of the bytes, so it changes exactly when they do.
    etag: String,
    modified: Option<SystemTime>,
}

/// The pages endpoint: either the whole tree (nested at `/`, `dir/` → `dir/index.html`)
/// or one fixed file (`/admin`, `/watch/{video}`).
pub struct Pages {
    source: Arc<Source>,
    fixed: Option<&'static str>,
}

impl Pages {
    /// Every file of the tree, at its path.
    pub fn tree(source: Arc<Source>) -> Pages {
        Pages {
            source,
            fixed: None,
        }
    }

    /// One file whatever the path (a route with its own URL).
    pub fn file(source: Arc<Source>, file: &'static str) -> Pages {
        Pages {
            source,
            fixed: Some(file),
        }
    }
}

impl Endpoint for Pages {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let rel = match self.fixed {
            Some(file) => Some(file.to_string()),
            None => clean(req.uri().path()),
        };
        let csp = csp_for(rel.as_deref());
        let mut resp = self.answer(&req, rel).await;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Ok(resp)
    }
}

impl Pages {
    /// The whole answer for the file `rel`, error or not (errors in the API's
    /// `{code, message}` shape).
    async fn answer(&self, req: &Request, rel: Option<String>) -> Response {
        let head = req.method() == Method::HEAD;
        if !head && req.method() != Method::GET {
            let mut resp = json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "pages answer GET and HEAD",
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let file = match rel {
            Some(rel) => self.source.load(&rel).await.map(|f| (rel, f)),
            None => None,
        };
        let Some((rel, file)) = file else {
            return json_error(StatusCode::NOT_FOUND, "not_found", "not found");
        };
        respond(req.headers(), head, &rel, file)
    }
}

/// The relative file path of a request path, or `None` when it is not one we serve.
/// Percent-escapes are decoded first, so `%2e%2e%2f` is caught like `../`; any `.` or
/// `..` segment, backslash, NUL or dot-file name is refused rather than resolved, so
/// no spelling can climb out of the folder. A path ending in `/` means its `index.html`.
fn clean(path: &str) -> Option<String> {
    let decoded = percent_decode(path)?;
    let mut parts = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg.starts_with('.') || seg.contains(['\\', '\0']) {
            return None;
        }
        parts.push(seg);
    }
    let mut rel = parts.join("/");
    if rel.is_empty() || decoded.ends_with('/') {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str("index.html");
    }
    Some(rel)
}

/// `%XX` decoding to UTF-8; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `Content-Type` of a file, from its extension; text is declared UTF-8 (the pages
/// are), so a browser never guesses (`nosniff` forbids it to anyway).
fn content_type(rel: &str) -> String {
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let texty = mime.type_() == mime_guess::mime::TEXT
        || mime.essence_str() == "application/javascript"
        || mime.essence_str() == "application/json";
    if texty {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

/// How long a browser may keep a file without asking again. The file names carry no
/// content hash (`/app.js` stays `/app.js` across deploys), so anything that must match
/// the page's version (HTML, scripts, styles, data) is `no-cache`: the browser keeps it
/// but revalidates every use, a 304 of a few hundred bytes thanks to the `ETag`, and a
/// deploy shows at the next load instead of pairing a new page with an old module.
/// Media (the demo clip, images, fonts) is big, not tied to the code's version and
/// re-fetched by every seek: an hour of freshness.
fn cache_control(content_type: &str) -> &'static str {
    if ["video/", "audio/", "image/", "font/"]
        .iter()
        .any(|p| content_type.starts_with(p))
    {
        "public, max-age=3600"
    } else {
        "no-cache"
    }
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// No usable range: the whole file with 200. A malformed header, another unit or
    /// several ranges are ignored, as RFC 9110 §14.2 allows (one clip, one range).
    Whole,
    /// Bytes `start..=end`, with 206.
    Part(u64, u64),
    /// A well-formed range that starts past the end: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` (RFC 9110 §14.1.2).
fn want(range: Option<&str>, len: u64) -> Want {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Want::Whole;
    };
    let spec = spec.trim();
    let Some((a, b)) = spec.split_once('-') else {
        return Want::Whole;
    };
    if spec.contains(',') {
        return Want::Whole;
    }
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.is_empty(), num(a), num(b)) {
        // Suffix: the last n bytes (all of them when n exceeds the length).
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Want::Unsatisfiable
            } else {
                Want::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(start), end) if b.is_empty() || end.is_some() => {
            if end.is_some_and(|e| e < start) {
                Want::Whole
            } else if start >= len {
                Want::Unsatisfiable
            } else {
                Want::Part(start, end.unwrap_or(u64::MAX).min(len - 1))
            }
        }
        _ => Want::Whole,
    }
}

/// Whether an `If-None-Match` list names this entity tag (weak comparison, `*` matches).
fn etag_listed(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}

/// A header's value as text, when it is text.
fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The response for a found file: 304, 416, 206 or 200, with every validator. A `HEAD`
/// gets the same headers and no body.
fn respond(headers: &HeaderMap, head: bool, rel: &str, file: File) -> Response {
    let ctype = content_type(rel);
    let modified = file.modified.map(httpdate::fmt_http_date);
    let mut builder = Response::builder()
        .header(header::ETAG, file.etag.as_str())
        .header(header::CACHE_CONTROL, cache_control(&ctype))
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(m) = &modified {
        builder = builder.header(header::LAST_MODIFIED, m.as_str());
    }
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
    let unchanged = match text(headers, header::IF_NONE_MATCH) {
        Some(list) => etag_listed(list, &file.etag),
        None => match (text(headers, header::IF_MODIFIED_SINCE), file.modified) {
            (Some(since), Some(m)) => httpdate::parse_http_date(since)
                .is_ok_and(|since| m.duration_since(since).map_or(true, |d| d.as_secs() == 0)),
            _ => false,
        },
    };
    if unchanged {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let len = file.data.len() as u64;
    // A Range counts only if If-Range (when sent) still names this version.
    let range = text(headers, header::RANGE).filter(|_| {
        text(headers, header::IF_RANGE)
            .is_none_or(|v| v == file.etag || modified.as_deref() == Some(v))
    });
    let (status, body) = match want(range, len) {
        Want::Whole => (StatusCode::OK, file.data),
        Want::Part(start, end) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            let part = file.data.slice(start as usize..end as usize + 1);
            (StatusCode::PARTIAL_CONTENT, part)
        }
        Want::Unsatisfiable => {
            let mut resp = json_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                &format!("the file has {len} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let builder = builder
        .status(status)
        .content_type(ctype)
        .header(header::CONTENT_LENGTH, body.len());
    if head {
        builder.body(Body::empty())
    } else {
        builder.body(body)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use poem::{Endpoint, Request};

    use super::{
        EXAMPLES_CSP, Pages, STATIC_CSP, Source, Want, clean, content_type, csp_for, want,
    };

    /// Only files under `examples/` get the relaxed policy; every other page, and any
    /// spelling that is not a file under `examples/`, keeps the strict one.
    #[test]
    fn examples_alone_relax_the_policy() {
        for rel in ["examples/artplayer.html", "examples/vendor/artplayer.js"] {
            assert_eq!(csp_for(Some(rel)), EXAMPLES_CSP, "{rel}");
        }
        for rel in [
            Some("index.html"),
            Some("app.js"),
            Some("lib/danmaku-client.js"),
            Some("admin.html"),
            Some("page/examples/x.js"),
            Some("examplesx/a.html"),
            None,
        ] {
            assert_eq!(csp_for(rel), STATIC_CSP, "{rel:?}");
        }
        assert!(!STATIC_CSP.contains("unsafe-inline") && !STATIC_CSP.contains("worker-src"));
        assert!(EXAMPLES_CSP.contains("style-src 'self' 'unsafe-inline'"));
        assert!(EXAMPLES_CSP.contains("worker-src 'self' blob:"));
        assert!(
            EXAMPLES_CSP.contains("script-src 'self';"),
            "scripts stay same-origin only"
        );
        assert!(!EXAMPLES_CSP.contains("unsafe-eval"));
    }

    /// The header as served: the example page and a missing file under /examples/ get the
    /// relaxed policy, the video page, a script, /admin and a 404 elsewhere the strict one.
    #[tokio::test]
    async fn served_policy_by_path() {
        let source = Arc::new(Source::Embedded);
        let csp = |resp: &poem::Response| {
            resp.headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let tree = Pages::tree(source.clone());
        for (path, status, want) in [
            ("/examples/artplayer.html", 200, EXAMPLES_CSP),
            ("/examples/vendor/missing.js", 404, EXAMPLES_CSP),
            ("/", 200, STATIC_CSP),
            ("/app.js", 200, STATIC_CSP),
            ("/%65xamples/../app.js", 404, STATIC_CSP),
            ("/missing.html", 404, STATIC_CSP),
        ] {
            let resp = tree
                .call(Request::builder().uri_str(path).finish())
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), status, "{path}");
            assert_eq!(csp(&resp), want, "{path}");
        }
        let admin = Pages::file(source, "admin.html");
        let resp = admin
            .call(Request::builder().uri_str("/admin").finish())
            .await
            .unwrap();
        assert_eq!(csp(&resp), STATIC_CSP);
    }

    /// Every spelling of a climb is refused; ordinary paths map to files.
    #[test]
    fn paths_never_climb() {
        for bad in [
            "/../Cargo.toml",
            "/css/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E%2FCargo.toml",
            "/css/..%2f..%2fCargo.toml",
            "/..%5cCargo.toml",
            "/./index.html",
            "/.git/config",
            "/a%00b",
            "/%zz",
            "/%ff",
        ] {
            assert_eq!(clean(bad), None, "{bad}");
        }
        assert_eq!(clean("/").as_deref(), Some("index.html"));
        assert_eq!(clean("").as_deref(), Some("index.html"));
        assert_eq!(clean("/page/").as_deref(), Some("page/index.html"));
        assert_eq!(clean("/lib/util.js").as_deref(), Some("lib/util.js"));
        assert_eq!(clean("//css//base.css").as_deref(), Some("css/base.css"));
        assert_eq!(clean("/a%20b.js").as_deref(), Some("a b.js"));
    }

    /// The three forms of a byte range, and what is ignored or refused.
    #[test]
    fn byte_ranges() {
        let w = |r: &str| want(Some(r), 100);
        assert_eq!(w("bytes=0-9"), Want::Part(0, 9));
        assert_eq!(w("bytes=90-"), Want::Part(90, 99));
        assert_eq!(w("bytes=90-500"), Want::Part(90, 99));
        assert_eq!(w("bytes=-10"), Want::Part(90, 99));
        assert_eq!(w("bytes=-500"), Want::Part(0, 99));
        assert_eq!(w("bytes=100-"), Want::Unsatisfiable);
        assert_eq!(w("bytes=-0"), Want::Unsatisfiable);
        assert_eq!(w("bytes=9-0"), Want::Whole);
        assert_eq!(w("bytes=0-1,5-6"), Want::Whole);
        assert_eq!(w("items=0-9"), Want::Whole);
        assert_eq!(w("bytes=+1-2"), Want::Whole);
        assert_eq!(w("bytes=-"), Want::Whole);
        assert_eq!(want(None, 100), Want::Whole);
        assert_eq!(want(Some("bytes=0-"), 0), Want::Unsatisfiable);
    }

    /// Types the pages use, text in UTF-8.
    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert!(content_type("app.js").contains("javascript"));
        assert!(content_type("x.mjs").contains("javascript"));
        assert_eq!(content_type("css/base.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("demo.webm"), "video/webm");
        assert_eq!(content_type("a.mp4"), "video/mp4");
        assert_eq!(content_type("a.svg"), "image/svg+xml");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("a.wasm"), "application/wasm");
        assert_eq!(content_type("a.json"), "application/json; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
