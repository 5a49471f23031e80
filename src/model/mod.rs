//! The bottom of the house: plain types that every layer shares and that import nothing
//! else from the crate.
//!
//! - [`role`]: the four roles and a verified caller ([`role::Identity`]).
//! - [`audience`]: channel tiers, message audiences and the role-group masks fan-out
//!   uses.
//! - [`channel`]: the reserved channel names (`broadcast`, `user:*`, `video:*`).
//! - [`comment`]: how a comment is drawn (mode and size) and who may see it
//!   ([`comment::Visibility`]), shared by the rules, the store and the wire.
//! - [`policy`]: what each role may do when posting (configuration reads it, the comment
//!   rules enforce it).
//! - [`text`]: comment text normalisation and the case and width folding rules match on.
//! - [`time`]: the wall clock (unix seconds and milliseconds) and the process's coarse
//!   monotonic clock.
//! - [`refusal`]: the one refusal type. Domain code says what kind of refusal it is;
//!   `api::error` turns the kind into an HTTP status and `ws::protocol` into a reply.

pub mod audience;
pub mod channel;
pub mod comment;
pub mod policy;
pub mod refusal;
pub mod role;
pub mod text;
pub mod time;

pub use audience::{Audience, Tier, role_bit};
pub use comment::{Mode, Size, Visibility};
pub use policy::{Policy, RolePolicy};
pub use refusal::{Kind, Refusal};
pub use role::{Identity, Role};
