//! Interchange formats: the DPlayer v3 API and bilibili XML.
//!
//! Facts from `shared/reference/danmaku-formats.md`: DPlayer draws `text` and `author`
//! with `innerHTML`, so both are HTML-escaped; danmaku2ass needs the declaration and `<i>`
//! on one line; biliass and ArtPlayer need 8 double-quoted `p` fields with an integer
//! send time; importers map modes 1/2/3/6 to scroll, 4 to bottom, 5 to top.

use sha2::{Digest, Sha256};

use super::rules::{Draft, WHITE, format_color};
use crate::model::{Mode, Size};
use crate::store::danmaku::{NewDanmaku, StoredDanmaku};

/// HTML-escapes `& < > " ' /` for DPlayer, which renders with `innerHTML`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2F;"),
            c => out.push(c),
        }
    }
    out
}

/// DPlayer's numeric type of a mode.
pub fn dplayer_type(m: Mode) -> u8 {
    match m {
        Mode::Scroll => 0,
        Mode::Top => 1,
        Mode::Bottom => 2,
    }
}

/// One DPlayer row: `[time, type, color, author, text]`.
pub fn dplayer_row(d: &StoredDanmaku) -> serde_json::Value {
    serde_json::json!([
        d.d.time_ms as f64 / 1000.0,
        dplayer_type(d.d.mode),
        d.d.color,
        html_escape(&d.d.name),
        html_escape(&d.d.text),
    ])
}

/// Converts a DPlayer POST body into a draft. `author` and `token` are ignored: identity
/// comes from the bearer JWT. Missing fields default to time 0, type 0, white.
pub fn dplayer_draft(body: &serde_json::Value) -> Result<(String, Draft), String> {
    let id = match &body["id"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err("id (the video) is required".into()),
    };
    let text = body["text"].as_str().ok_or("text is required")?.to_string();
    let time = match &body["time"] {
        serde_json::Value::Null => 0.0,
        v => v.as_f64().ok_or("time must be a number")?,
    };
    let mode = match &body["type"] {
        serde_json::Value::Null => Mode::Scroll,
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(0) => Mode::Scroll,
            Some(1) => Mode::Top,
            Some(2) => Mode::Bottom,
            _ => return Err("type is 0, 1 or 2".into()),
        },
        serde_json::Value::String(s) => match s.as_str() {
            "right" | "0" => Mode::Scroll,
            "top" | "1" => Mode::Top,
            "bottom" | "2" => Mode::Bottom,
            _ => return Err("type is right, top or bottom".into()),
        },
        _ => return Err("type is 0, 1 or 2".into()),
    };
    let color = match &body["color"] {
        serde_json::Value::Null => WHITE,
        serde_json::Value::Number(n) => n
            .as_u64()
            .filter(|c| *c <= 0xffffff)
            .ok_or("color is a 24-bit integer")? as u32,
        serde_json::Value::String(s) => match s.strip_prefix('#') {
            Some(_) => super::rules::parse_color(s).ok_or("color is #rrggbb")?,
            None => s
                .parse::<u32>()
                .ok()
                .filter(|c| *c <= 0xffffff)
                .ok_or("color is a 24-bit integer")?,
        },
        _ => return Err("color is a 24-bit integer".into()),
    };
    Ok((
        id,
        Draft {
            text,
            time,
            mode: Some(mode.as_str().into()),
            color: Some(format_color(color)),
            size: None,
            audience: None,
        },
    ))
}

/// bilibili mode number of a mode (only 1, 4 and 5 are written).
fn bili_mode(m: Mode) -> u8 {
    match m {
        Mode::Scroll => 1,
        Mode::Bottom => 4,
        Mode::Top => 5,
    }
}

/// bilibili font size of a size.
fn bili_size(s: Size) -> u8 {
    match s {
        Size::Small => 18,
        Size::Normal => 25,
        Size::Large => 36,
    }
}

/// A short stable hash of a user id: never the raw id.
pub fn user_hash(sub: &str) -> String {
    let digest = Sha256::digest(sub.as_bytes());
    hex::encode(&digest[..4])
}

/// Escapes the five XML entities and drops characters invalid in XML 1.0.
fn xml_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            '\u{fffe}' | '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

/// Writes a bilibili XML document: declaration and `<i>` on one line, no BOM, 8 `p` fields.
pub fn bilibili_xml(video: &str, rows: &[StoredDanmaku]) -> String {
    let mut out = String::with_capacity(200 + rows.len() * 96);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com</chatserver><chatid>"#);
    xml_escape(video, &mut out);
    out.push_str("</chatid><mission>0</mission><maxlimit>");
    out.push_str(&rows.len().max(1).to_string());
    out.push_str("</maxlimit><state>0</state><real_name>0</real_name><source>k-v</source>");
    for d in rows {
        let text_empty = d.d.text.chars().all(|c| (c as u32) < 0x20);
        if text_empty {
            continue;
        }
        out.push_str(&format!(
            r#"<d p="{:.5},{},{},{},{},0,{},{}">"#,
            d.d.time_ms as f64 / 1000.0,
            bili_mode(d.d.mode),
            bili_size(d.d.size),
            d.d.color,
            d.d.created_at / 1000,
            user_hash(&d.d.sub),
            d.id,
        ));
        xml_escape(&d.d.text, &mut out);
        out.push_str("</d>");
    }
    out.push_str("</i>");
    out
}

/// The outcome of parsing an import file.
#[derive(Debug, Default)]
pub struct Imported {
    pub items: Vec<NewDanmaku>,
    /// Entries skipped (advanced/code modes, bad fields, empty text).
    pub skipped: usize,
}

/// Parses a bilibili XML file strictly. Any well-formedness error fails the whole file.
pub fn parse_bilibili(
    video: &str,
    xml: &str,
    max_len: usize,
    now_ms: u64,
) -> Result<Imported, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("malformed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "i" {
        return Err("the root element must be <i>".into());
    }
    let mut out = Imported::default();
    for node in root.children().filter(|n| n.has_tag_name("d")) {
        let Some(p) = node.attribute("p") else {
            out.skipped += 1;
            continue;
        };
        let f: Vec<&str> = p.split(',').map(str::trim).collect();
        let parsed = (|| {
            if f.len() < 5 {
                return None;
            }
            let time: f64 = f[0]
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t >= 0.0)?;
            let mode = match f[1].parse::<u8>().ok()? {
                1 | 2 | 3 | 6 => Mode::Scroll,
                4 => Mode::Bottom,
                5 => Mode::Top,
                _ => return None,
            };
            let size = match f[2].parse::<u32>().ok()? {
                0..=21 => Size::Small,
                22..=30 => Size::Normal,
                _ => Size::Large,
            };
            let color = f[3].parse::<u32>().ok()? & 0xffffff;
            let sent = f[4]
                .parse::<f64>()
                .ok()
                .map(|s| (s.max(0.0) * 1000.0) as u64);
            let text = super::rules::normalize_text(node.text().unwrap_or_default());
            let len = text.chars().count();
            if len == 0 || len > max_len {
                return None;
            }
            let hash = f
                .get(6)
                .copied()
                .unwrap_or("")
                .chars()
                .take(32)
                .collect::<String>();
            Some(NewDanmaku {
                video: video.to_string(),
                time_ms: (time * 1000.0).round() as u64,
                text,
                mode,
                color,
                size,
                audience: crate::model::Audience::Everyone,
                sub: format!("bilibili:{hash}"),
                name: "bilibili".into(),
                created_at: sent.filter(|s| *s > 0).unwrap_or(now_ms),
                state: crate::model::Visibility::Visible,
            })
        })();
        match parsed {
            Some(d) => out.items.push(d),
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_for_dplayer() {
        assert_eq!(
            html_escape(r#"<b>"x" & 'y'/</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; &#x27;y&#x27;&#x2F;&lt;&#x2F;b&gt;"
        );
    }

    #[test]
    fn dplayer_body_defaults() {
        let (id, d) = dplayer_draft(&serde_json::json!({"id": "v1", "text": "hi"})).unwrap();
        assert_eq!(id, "v1");
        assert_eq!(
            (d.time, d.mode.as_deref(), d.color.as_deref()),
            (0.0, Some("scroll"), Some("#ffffff"))
        );
        let (_, d) = dplayer_draft(&serde_json::json!({"id": 7, "text": "x", "type": 1, "color": 16711680, "author": "evil"})).unwrap();
        assert_eq!(
            (d.mode.as_deref(), d.color.as_deref()),
            (Some("top"), Some("#ff0000"))
        );
        assert!(dplayer_draft(&serde_json::json!({"text": "x"})).is_err());
    }

    #[test]
    fn import_maps_modes_and_skips_advanced() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><i><d p="1.5,1,25,16777215,1700000000,0,abc,1">a &amp; b</d><d p="2,4,18,255,1700000000,0,abc,2">low</d><d p="3,5,36,0,1700000000,0,abc,3">up</d><d p="4,7,25,0,1700000000,0,abc,4">[json]</d><d p="5,8,25,0,1700000000,0,abc,5">code</d></i>"#;
        let got = parse_bilibili("v", xml, 100, 0).unwrap();
        assert_eq!(got.skipped, 2);
        let modes: Vec<Mode> = got.items.iter().map(|d| d.mode).collect();
        assert_eq!(modes, [Mode::Scroll, Mode::Bottom, Mode::Top]);
        assert_eq!(got.items[0].text, "a & b");
        assert_eq!(got.items[1].size, Size::Small);
        assert!(parse_bilibili("v", "<i><d>", 100, 0).is_err());
    }
}
