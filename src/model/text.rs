//! Comment text: the normalisation every stored comment gets, and the folding that rule
//! matching compares on. Pure functions, shared by the comment rules (`danmaku`) and the
//! block rules (`moderation`).

use unicode_normalization::UnicodeNormalization;

/// Whether a character is removed from comment text: controls and bidi overrides.
fn is_stripped(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Strips control characters, NFC-normalises and trims. Newlines and tabs become spaces.
/// Stripping comes first: a zero-width mark between a letter and a combining accent would
/// otherwise block their composition, and the stored text would not be NFC (nor would
/// normalising twice give the same text).
pub fn normalize_text(raw: &str) -> String {
    let nfc: String = raw
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !is_stripped(*c))
        .nfc()
        .collect();
    nfc.trim().to_string()
}

/// Folds full-width forms to half-width and lowercases, for block-list matching.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}
