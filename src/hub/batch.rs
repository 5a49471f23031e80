//! One pass of a room: its batch, serialized once per role-group selection, framed once
//! (header included), compressed once, and the same bytes queued on every socket.
//!
//! Each role group gets the events whose target mask admits it, as a bit set over the
//! batch; groups with the same selection share one frame. Events that name users (a
//! push to a user list) or skip one (a comment is never echoed to its poster's
//! sockets) are checked per socket, but only a socket they actually concern gets a
//! frame of its own: the rest share the group's frame.

use std::{collections::HashSet, sync::Arc};

use bytes::Bytes;

use super::{
    channel::{Batch, Joiner},
    conn::{Conn, Sent, hash_sub},
    event::Encoded,
};
use crate::{
    frame::{self, deflate},
    model::{Role, role_bit},
};

/// What a pass did, for metrics and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    /// Event deliveries (one event to one socket).
    pub delivered: usize,
    /// Sockets that overflowed during the pass and are being closed.
    pub overflowed: usize,
    /// Frames built (plain and compressed).
    pub frames: usize,
}

/// A frame for one selection of the batch, plain and (lazily) compressed.
struct Framed {
    sel: u64,
    plain: Bytes,
    /// `None` until a compressing socket asks; then the compressed frame, or the plain
    /// one again when compression did not make it smaller.
    deflated: Option<Bytes>,
}

/// The frames of one pass, built on demand and kept for every socket that needs them.
struct Frames<'a> {
    events: &'a [Encoded],
    built: Vec<Framed>,
}

impl<'a> Frames<'a> {
    /// The frame for selection `sel`, compressed when `deflate`.
    fn get(&mut self, sel: u64, deflate: bool, built: &mut usize) -> Bytes {
        let i = match self.built.iter().position(|f| f.sel == sel) {
            Some(i) => i,
            None => {
                let events = self.events;
                let plain = frame::text_array(
                    (0..events.len())
                        .filter(move |i| sel & (1 << i) != 0)
                        .map(move |i| &events[i].text[..]),
                );
                *built += 1;
                self.built.push(Framed {
                    sel,
                    plain,
                    deflated: None,
                });
                self.built.len() - 1
            }
        };
        let f = &mut self.built[i];
        if !deflate {
            return f.plain.clone();
        }
        if f.deflated.is_none() {
            let compressed = deflate::compress(frame::payload_of(&f.plain))
                .map(|z| frame::server_frame(frame::opcode::TEXT, true, &z));
            if compressed.is_some() {
                *built += 1;
            }
            f.deflated = Some(compressed.unwrap_or_else(|| f.plain.clone()));
        }
        f.deflated.clone().unwrap_or_else(|| f.plain.clone())
    }
}

/// A per-socket filter of the batch: events that skip one user, or reach only some.
enum Filter<'a> {
    /// Skip the events in `bits` for the sockets of this user.
    Except { hash: u64, sub: &'a str, bits: u64 },
    /// The events in `bits` reach only these users (and, by their token's `mod` claim,
    /// the moderators of the room's video when `ev`, the first of them, says so). Events
    /// with the same list and flag share one filter: a room's marked copies all name its
    /// moderators, so a batch of many costs each socket one check.
    Only {
        bits: u64,
        ev: &'a Encoded,
        users: &'a HashSet<Arc<str>>,
    },
}

/// Builds the per-socket filters of a batch (few: one per distinct poster).
fn filters(events: &[Encoded]) -> Vec<Filter<'_>> {
    let mut out: Vec<Filter<'_>> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let bit = 1u64 << i;
        if let Some(except) = ev.target.except.as_deref() {
            let existing = out.iter_mut().find_map(|f| match f {
                Filter::Except { sub, bits, .. } if *sub == except => Some(bits),
                _ => None,
            });
            match existing {
                Some(bits) => *bits |= bit,
                None => out.push(Filter::Except {
                    hash: hash_sub(except),
                    sub: except,
                    bits: bit,
                }),
            }
        }
        if let Some(users) = ev.target.users.as_deref() {
            let claim = ev.target.claim_moderators;
            let existing = out.iter_mut().find_map(|f| match f {
                Filter::Only {
                    bits,
                    ev: first,
                    users: listed,
                } if first.target.claim_moderators == claim && *listed == users => Some(bits),
                _ => None,
            });
            match existing {
                Some(bits) => *bits |= bit,
                None => out.push(Filter::Only {
                    bits: bit,
                    ev,
                    users,
                }),
            }
        }
    }
    out
}

/// Narrows `sel` for one socket by the batch's filters.
fn narrow(sel: u64, conn: &Conn, filters: &[Filter<'_>]) -> u64 {
    let mut sel = sel;
    for f in filters {
        match f {
            Filter::Except { hash, sub, bits } => {
                if sel & bits != 0 && conn.is_user(*hash, sub) {
                    sel &= !bits;
                }
            }
            Filter::Only { bits, ev, users } => {
                if sel & bits != 0 && !ev.target.listed(users, conn, &ev.channel) {
                    sel &= !bits;
                }
            }
        }
    }
    sel
}

/// Bits of the events a joiner must skip (the first `skip` of the batch).
fn skipped(joiners: &[Joiner], id: u64) -> u64 {
    match joiners.iter().find(|j| j.id == id) {
        Some(j) if j.skip >= 64 => u64::MAX,
        Some(j) => (1u64 << j.skip) - 1,
        None => 0,
    }
}

/// Writes one batch to the room's members.
pub fn deliver(batch: &Batch) -> PassOutcome {
    let events = &batch.events[..];
    let mut out = PassOutcome::default();
    if events.is_empty() {
        return out;
    }
    let filters = filters(events);
    let mut frames = Frames {
        events,
        built: Vec::new(),
    };
    for role in Role::ALL {
        let bit = role_bit(role);
        let sel: u64 = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.target.mask & bit != 0)
            .fold(0, |s, (i, _)| s | (1 << i));
        if sel == 0 {
            continue;
        }
        let group = batch.members.group(role);
        if group.is_empty() {
            continue;
        }
        let shared = sel.count_ones() as usize;
        for conn in group {
            let mut mine = sel;
            if !batch.joiners.is_empty() {
                mine &= !skipped(&batch.joiners, conn.id);
            }
            if !filters.is_empty() {
                mine = narrow(mine, conn, &filters);
            }
            if mine == 0 {
                continue;
            }
            let frame = frames.get(mine, conn.deflate, &mut out.frames);
            match conn.send(&frame) {
                Sent::Written | Sent::Queued => {
                    out.delivered += if mine == sel {
                        shared
                    } else {
                        mine.count_ones() as usize
                    };
                }
                Sent::Overflowed => out.overflowed += 1,
                Sent::Closed => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joiners_skip_exactly_their_prefix() {
        let j = [Joiner { id: 3, skip: 2 }, Joiner { id: 4, skip: 70 }];
        assert_eq!(skipped(&j, 3), 0b11);
        assert_eq!(skipped(&j, 4), u64::MAX);
        assert_eq!(skipped(&j, 5), 0);
    }
}
