//! How a comment is drawn: its motion and its size class. Plain enums, stored and sent
//! by name, so the store and the wire share them with the comment rules.

use serde::{Deserialize, Serialize};

/// How a comment moves across the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Mode {
    /// Right to left.
    Scroll,
    /// Pinned at the top.
    Top,
    /// Pinned at the bottom.
    Bottom,
}

impl Mode {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Scroll => "scroll",
            Mode::Top => "top",
            Mode::Bottom => "bottom",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "scroll" => Some(Mode::Scroll),
            "top" => Some(Mode::Top),
            "bottom" => Some(Mode::Bottom),
            _ => None,
        }
    }
}

/// Font size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Size {
    Small,
    Normal,
    Large,
}

impl Size {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Normal => "normal",
            Size::Large => "large",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<Size> {
        match s {
            "small" => Some(Size::Small),
            "normal" => Some(Size::Normal),
            "large" => Some(Size::Large),
            _ => None,
        }
    }
}

/// Who may see a stored comment besides its author. Set when it is stored (by the block
/// rules, a shadow ban or a hold rule) and changed only by a review (held → visible).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone in its audience.
    #[default]
    Visible,
    /// Pending review: its author (shown as pending), the video's moderators and admins.
    Held,
    /// Shadowed: its author (shown as any comment), the video's moderators and admins
    /// (shown marked). Nobody else ever learns it exists.
    Shadow,
}

impl Visibility {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Visible => "visible",
            Visibility::Held => "held",
            Visibility::Shadow => "shadow",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "visible" => Some(Visibility::Visible),
            "held" => Some(Visibility::Held),
            "shadow" => Some(Visibility::Shadow),
            _ => None,
        }
    }
}
