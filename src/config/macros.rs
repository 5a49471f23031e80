//! The `group!` macro: a settings group is declared once (doc, key, type, default and
//! clap `arg(...)` per setting), and the TOML section, its defaults, the flags and their
//! overlay all come from that one declaration. Also [`Setting`], a group's keys as the
//! README lists them.

/// One setting as the README's table lists it: TOML section and key, flag and env var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// TOML section (`ws` for `[ws]`).
    pub section: &'static str,
    /// Key inside the section.
    pub key: &'static str,
    /// Long flag without the dashes; `None` for file-only settings.
    pub flag: Option<String>,
    /// Env var; `None` for file-only settings.
    pub env: Option<String>,
}

impl Setting {
    /// The flat key this setting had before the file had sections: the flag's name with
    /// underscores (every flag was named after its key), else the key.
    pub fn old_key(&self) -> String {
        match &self.flag {
            Some(flag) => flag.replace('-', "_"),
            None => self.key.to_string(),
        }
    }
}

/// Settings whose values never appear in `Debug` output (logs, panics): the JWT secret,
/// the API keys and the moderation hook's signing key.
pub const SECRET_KEYS: &[&str] = &["secret", "api_keys", "hook_secret"];

/// Adds one field to a group's `Debug`, as `***` when it is a secret.
pub fn debug_field(d: &mut std::fmt::DebugStruct<'_, '_>, key: &str, value: &dyn std::fmt::Debug) {
    if SECRET_KEYS.contains(&key) {
        d.field(key, &"***");
    } else {
        d.field(key, value);
    }
}

/// Declares a settings group. Each field reads
/// `/// doc` `key: Type = default => (clap arg attributes);` where the attributes name the
/// flag and env var (`long = "ws-max-message", env = "DANMAKU_WS_MAX_MESSAGE"`), or are
/// `(skip)` for a setting only the file can set. Fields of the trailing `optional { }`
/// block have no default: `key: T => (...)` is `Option<T>` in the file and unset by
/// default. The macro generates:
///
/// - the section's serde struct, `#[serde(default, deny_unknown_fields)]`, and its
///   `Default`, plus `SECTION` (the TOML section name);
/// - the clap `Args` struct: the same docs (they are the `--help` text), every field an
///   `Option` so that a flag left unset keeps the file's value. Each arg's id is its
///   `section.key` (unique across groups, and `--help` shows it as the value name, so
///   every flag tells where it lives in the file);
/// - `Args::overlay`, copying the flags given onto the section, and `Args::settings`,
///   the keys with their flag and env var, read back from clap.
macro_rules! group {
    (
        $(#[doc = $gdoc:literal])*
        [$section:literal] $Cfg:ident, $Args:ident, $heading:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr => $arg:tt;
            )*
        }
        $(optional {
            $(
                $(#[doc = $odoc:literal])*
                $ofield:ident : $oty:ty => $oarg:tt;
            )*
        })?
    ) => {
        $(#[doc = $gdoc])*
        #[derive(Clone, PartialEq, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $Cfg {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            $($( $(#[doc = $odoc])* pub $ofield: Option<$oty>, )*)?
        }

        /// The defaults, as declared beside each field.
        impl Default for $Cfg {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $($( $ofield: None, )*)?
                }
            }
        }

        /// Every field, with secrets (see [`crate::config::SECRET_KEYS`]) shown as `***`.
        impl ::std::fmt::Debug for $Cfg {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut d = f.debug_struct(stringify!($Cfg));
                $( $crate::config::debug_field(&mut d, stringify!($field), &self.$field); )*
                $($( $crate::config::debug_field(&mut d, stringify!($ofield), &self.$ofield); )*)?
                d.finish()
            }
        }

        impl $Cfg {
            /// The TOML section of this group.
            pub const SECTION: &'static str = $section;
        }

        #[doc = concat!("The flags and env vars of `[", $section, "]`; each one left unset keeps the file's or the default value.")]
        #[derive(Clone, Default, ::clap::Args)]
        #[command(next_help_heading = $heading)]
        pub struct $Args {
            $(
                $(#[doc = $doc])*
                #[arg(id = concat!($section, ".", stringify!($field)))]
                #[arg $arg]
                pub $field: Option<$ty>,
            )*
            $($(
                $(#[doc = $odoc])*
                #[arg(id = concat!($section, ".", stringify!($ofield)))]
                #[arg $oarg]
                pub $ofield: Option<$oty>,
            )*)?
        }

        /// Every flag, with secrets shown as `***`.
        impl ::std::fmt::Debug for $Args {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut d = f.debug_struct(stringify!($Args));
                $( $crate::config::debug_field(&mut d, stringify!($field), &self.$field); )*
                $($( $crate::config::debug_field(&mut d, stringify!($ofield), &self.$ofield); )*)?
                d.finish()
            }
        }

        impl $Args {
            /// Copies every flag or env var that was given onto the section.
            pub fn overlay(self, cfg: &mut $Cfg) {
                $( if let Some(v) = self.$field { cfg.$field = v; } )*
                $($( if self.$ofield.is_some() { cfg.$ofield = self.$ofield; } )*)?
            }

            /// The section's keys with the flag and env var clap knows them by.
            pub fn settings() -> Vec<$crate::config::Setting> {
                let cmd = <Self as ::clap::Args>::augment_args(::clap::Command::new("danmaku"));
                let keys: &[&'static str] = &[$(stringify!($field),)* $($(stringify!($ofield),)*)?];
                keys.iter()
                    .map(|&key| {
                        let id = format!("{}.{key}", $section);
                        let arg = cmd.get_arguments().find(|a| a.get_id() == id.as_str());
                        $crate::config::Setting {
                            section: $section,
                            key,
                            flag: arg.and_then(|a| a.get_long()).map(str::to_string),
                            env: arg
                                .and_then(|a| a.get_env())
                                .map(|e| e.to_string_lossy().into_owned()),
                        }
                    })
                    .collect()
            }
        }
    };
}
