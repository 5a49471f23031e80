//! The channel scripts and the wire format they share with every node.
//!
//! Publishing runs [`PUBLISH_LUA`] with the event pre-encoded as the text around its seq
//! ([`FrameParts`]); Redis splices the number in, appends the frame to the window stream
//! and announces an envelope `seq SP len SP header frame`. A join reads the same keys with
//! [`FETCH_LUA`]. The envelope and the window entries are decoded here too, so the format
//! is written and read in one file.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{RedisBus, unavailable};
use crate::{
    bus::{BusError, LocalOnly, Published},
    hub::event::{Encoded, FrameParts, Publish, Target, TargetWire},
    model::time::now_millis,
};

/// Numbers, records and announces one event atomically (see the module docs). With a
/// positive ARGV[10], KEYS[4] makes it once-only: a second publish of the same stored
/// change (a catch-up after a publish that timed out but reached Redis) returns 0 and
/// does nothing.
pub(super) const PUBLISH_LUA: &str = r#"
if tonumber(ARGV[10]) > 0 and not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[10]) then
  return 0
end
local s = redis.call('INCR', KEYS[1])
if s == 1 then redis.call('SET', KEYS[2], ARGV[1], 'NX') end
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
local frame = ARGV[2] .. s .. ARGV[3]
if tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], s .. '-0', 'h', ARGV[4], 'a', ARGV[9], 'f', frame)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
redis.call('PUBLISH', ARGV[7], s .. ' ' .. #ARGV[4] .. ' ' .. ARGV[4] .. frame)
return s
"#;

/// Reads a channel's last seq, epoch (creating it) and window events after a position.
pub(super) const FETCH_LUA: &str = r#"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local ep = redis.call('GET', KEYS[2])
if not ep then
  ep = ARGV[1]
  redis.call('SET', KEYS[2], ep, 'EX', ARGV[3])
end
local items = {}
if ARGV[2] ~= '' then items = redis.call('XRANGE', KEYS[3], ARGV[2], '+') end
return {s, ep, items}
"#;

/// Seconds a stored change's once-only key lasts (one small key per comment: at 100
/// posts/s, 60k keys). A catch-up after a longer outage may repeat a change whose
/// publish timed out after reaching Redis; clients drop repeats by id.
const ONCE_S: u64 = 600;

/// Seconds a channel's seq and epoch keys outlive its last publish.
pub(super) const KEEP_S: u64 = 7 * 24 * 3600;

/// A stream entry as XRANGE returns it: id, then flat field/value pairs.
pub(super) type Item = (String, Vec<Vec<u8>>);

/// A fresh random epoch, offered when a channel's sequence starts.
pub(super) fn new_epoch() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// Splits a pub/sub envelope `seq SP len SP header frame` into its parts.
pub(super) fn parse_envelope(payload: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, rest) = text.split_once(' ')?;
    let (len, rest) = rest.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    if rest.len() < len {
        return None;
    }
    let rest = rest.as_bytes();
    Some((seq.parse().ok()?, &rest[..len], &rest[len..]))
}

/// The header that travels with each event: its channel and audience.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Header {
    #[serde(rename = "c")]
    pub(super) channel: String,
    #[serde(rename = "t")]
    pub(super) target: TargetWire,
    /// The stored change the event announces (its once-only name), so the publishing
    /// node can tell when its own subscriber got it back.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub(super) once: Option<String>,
}

/// Decodes a window entry into `(seq, published at, target, frame)`.
pub(super) fn decode_item((id, fields): Item) -> Option<(u64, u64, Target, Bytes)> {
    let seq = id.split('-').next()?.parse().ok()?;
    let (mut header, mut at, mut frame) = (None, None, None);
    for pair in fields.chunks(2) {
        let [name, value] = pair else { continue };
        match name.as_slice() {
            b"h" => header = serde_json::from_slice::<Header>(value).ok(),
            b"a" => at = std::str::from_utf8(value).ok()?.parse::<u64>().ok(),
            b"f" => frame = String::from_utf8(value.clone()).ok(),
            _ => {}
        }
    }
    Some((seq, at?, Target::from(header?.target), Bytes::from(frame?)))
}

impl RedisBus {
    /// Numbers, records and announces one event in one script run; this node's sockets
    /// get it back through the delivery loop, like every other node's.
    pub(super) async fn publish_event(
        &self,
        msg: Publish,
        once: Option<&str>,
    ) -> Result<Published, BusError> {
        let seq = self.run_publish(&msg, once).await?;
        Ok(self.published(&msg, seq))
    }

    /// [`publish_event`](Self::publish_event) for a stored change: when Redis cannot
    /// take it, the event goes to this node's own sockets without a seq instead.
    pub(super) async fn publish_or_here(
        &self,
        msg: Publish,
        once: &str,
    ) -> Result<Published, LocalOnly> {
        match self.run_publish(&msg, Some(once)).await {
            Ok(seq) => Ok(self.published(&msg, seq)),
            Err(error) => {
                let delivery = self.hub.deliver(Encoded::unsequenced(msg, now_millis()));
                if let Some(room) = delivery.flush {
                    self.hub.flush(room);
                }
                Err(LocalOnly {
                    error,
                    delivered_here: delivery.count,
                })
            }
        }
    }

    /// Runs the publish script: returns the seq Redis gave the event, or 0 when `once`
    /// names a change already published.
    async fn run_publish(&self, msg: &Publish, once: Option<&str>) -> Result<u64, BusError> {
        let mut conn = self.connection()?;
        let now = now_millis();
        let parts = FrameParts::encode(msg, now);
        let header = serde_json::to_string(&Header {
            channel: msg.channel.to_string(),
            target: TargetWire::from(&msg.target),
            once: once.map(str::to_string),
        })
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        // Awaiting its echo from before the call: the echo may beat the reply.
        if let Some(once) = once {
            self.awaiting_echo(once);
        }
        let ch = &msg.channel;
        let seq: u64 = self
            .publish_script
            .key(self.key("seq", ch))
            .key(self.key("ep", ch))
            .key(self.key("win", ch))
            .key(self.key("once", once.unwrap_or("-")))
            .arg(new_epoch())
            .arg(parts.prefix)
            .arg(parts.suffix)
            .arg(header)
            .arg(self.cfg.window.events)
            .arg((self.cfg.window.max_age_ms / 1000).max(1))
            .arg(self.events_channel())
            .arg(KEEP_S)
            .arg(now)
            .arg(if once.is_some() { ONCE_S } else { 0 })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| {
                if let Some(once) = once {
                    self.echoed(once);
                }
                unavailable(e)
            })?;
        if seq > 0 {
            self.hub.metrics().published.fetch_add(1, Ordering::Relaxed);
            if let Some(once) = once
                && !self.ready.load(Ordering::SeqCst)
            {
                // Taken after this node's subscription broke: Redis may have had no
                // subscriber left to send it to (it was shutting down).
                self.unconfirmed(once);
            }
        } else if let Some(once) = once {
            // Published before: nothing comes back this time.
            self.echoed(once);
        }
        Ok(seq)
    }

    /// What a publish reports: delivery is asynchronous (every node, this one included,
    /// gets the event from Redis), so the count is this node's sockets in the audience's
    /// role groups.
    fn published(&self, msg: &Publish, seq: u64) -> Published {
        let counts = self.hub.counts(&msg.channel);
        let delivered = (0..4)
            .filter(|i| msg.target.mask & (1 << i) != 0)
            .map(|i| counts[i])
            .sum();
        Published { seq, delivered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_split_into_seq_header_and_frame() {
        let header = r#"{"c":"a b","t":{"m":15}}"#;
        let env = format!("12 {} {header}{{\"x\":1}}", header.len());
        let (seq, h, f) = parse_envelope(env.as_bytes()).unwrap();
        assert_eq!((seq, h, f), (12, header.as_bytes(), &b"{\"x\":1}"[..]));
        assert!(parse_envelope(b"12 99 short").is_none());
        assert!(parse_envelope(b"x").is_none());
    }
}
