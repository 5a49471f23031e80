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
