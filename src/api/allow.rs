//! `Allow` on 405 answers (RFC 9110 §15.5.6: a 405 must list the methods the resource
//! supports). poem's router knows a path matched but not which methods it has, so the
//! table is built once from the OpenAPI spec (the `/api` routes) plus the few routes
//! declared outside it, and the header is added on the way out.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderValue, StatusCode, header},
};

/// Path templates (split into segments, `None` for a `{param}`) and their methods.
#[derive(Debug, Default)]
pub struct AllowTable {
    routes: Vec<(Vec<Option<String>>, String)>,
}

/// Routes served outside the OpenAPI service, with their methods.
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("/ws", "GET"),
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/metrics", "GET"),
    ("/openapi.json", "GET"),
    ("/dplayer/v3", "GET, POST"),
    ("/dplayer/v3/", "GET, POST"),
];

impl AllowTable {
    /// Builds the table from the spec JSON of the service nested at `prefix`.
    pub fn from_spec(spec: &str, prefix: &str) -> AllowTable {
        let mut table = AllowTable::default();
        let parsed: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        if let Some(paths) = parsed["paths"].as_object() {
            for (path, ops) in paths {
                let Some(ops) = ops.as_object() else { continue };
                let mut methods: Vec<String> = ops.keys().map(|m| m.to_ascii_uppercase()).collect();
                methods.sort();
                table.add(&format!("{prefix}{path}"), methods.join(", "));
            }
        }
        for (path, methods) in OTHER_ROUTES {
            table.add(path, (*methods).to_string());
        }
        table
    }

    /// Adds one template.
    fn add(&mut self, template: &str, methods: String) {
        let segments = template
            .split('/')
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
            .collect();
        self.routes.push((segments, methods));
    }

    /// The methods of the first template matching `path`.
    pub fn methods(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes.iter().find_map(|(template, methods)| {
            (template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s)))
            .then_some(methods.as_str())
        })
    }
}

/// Middleware body: adds `Allow` to a 405. It wraps the error renderer, so a 405 from
/// the router is already a `{code, message}` response here.
pub async fn add_allow<E: Endpoint>(
    ep: Arc<E>,
    table: Arc<AllowTable>,
    req: Request,
) -> Result<Response> {
    let path = req.uri().path().to_string();
    let mut resp = ep.call(req).await?.into_response();
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = table.methods(&path)
        && let Ok(v) = HeaderValue::from_str(methods)
    {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::AllowTable;

    /// Templates match by segment; literal segments must be equal.
    #[test]
    fn templates_match_by_segment() {
        let spec = r#"{"paths": {
            "/videos/{id}/danmaku": {"get": {}, "post": {}},
            "/videos/{id}/danmaku.xml": {"get": {}},
            "/videos": {"get": {}}
        }}"#;
        let t = AllowTable::from_spec(spec, "/api");
        assert_eq!(t.methods("/api/videos/42/danmaku"), Some("GET, POST"));
        assert_eq!(t.methods("/api/videos/42/danmaku.xml"), Some("GET"));
        assert_eq!(t.methods("/api/videos"), Some("GET"));
        assert_eq!(t.methods("/ws"), Some("GET"));
        assert_eq!(t.methods("/api/nothing/here"), None);
    }
}
