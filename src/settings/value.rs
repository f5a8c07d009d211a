//! A setting's value: our own words (enabled, disabled, member…) and the names a service hands
//! out, as users write them and as the journal and the report keep them.

use std::fmt;

/// A setting's value, as users write it on the command line and in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Enabled,
    Disabled,
    /// SMTP AUTH follows the organisation's transport config.
    Inherit,
    /// Per-user MFA enforced (a user who registered a method turns `enabled` into this).
    Enforced,
    /// A member of the group, or not.
    Member,
    NotMember,
    /// Whether a device can send with SMTP AUTH.
    CanSend,
    Blocked,
    /// A layer could not be read.
    Unknown,
    /// `none`: nothing set (forwarding to no one).
    Nothing,
    /// An authentication policy by its name; the empty name is no policy of the user's own.
    Named(Name),
}

/// A name a service hands out (an authentication policy's), kept once for the whole process: a
/// tenant has a handful, and a value stays small and `Copy` (a row holds three).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name(u32);

/// Every name met, in the order met, and where each is.
#[derive(Default)]
struct Names {
    texts: Vec<&'static str>,
    positions: std::collections::HashMap<&'static str, u32>,
}

fn names() -> std::sync::MutexGuard<'static, Names> {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<Names>> = std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

impl Name {
    pub fn new(text: &str) -> Name {
        let mut names = names();
        if let Some(&position) = names.positions.get(text) {
            return Name(position);
        }
        let kept: &'static str = Box::leak(text.to_string().into_boxed_str());
        let position = names.texts.len() as u32;
        names.texts.push(kept);
        names.positions.insert(kept, position);
        Name(position)
    }

    pub fn as_str(self) -> &'static str {
        names().texts.get(self.0 as usize).copied().unwrap_or_default()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The values that are words of ours, in the order `from_name` tries them.
const WORDS: [Value; 10] = [
    Value::Enabled,
    Value::Disabled,
    Value::Inherit,
    Value::Enforced,
    Value::Member,
    Value::NotMember,
    Value::CanSend,
    Value::Blocked,
    Value::Unknown,
    Value::Nothing,
];

impl Value {
    pub fn name(self) -> &'static str {
        match self {
            Value::Enabled => "enabled",
            Value::Disabled => "disabled",
            Value::Inherit => "inherit",
            Value::Enforced => "enforced",
            Value::Member => "member",
            Value::NotMember => "not-member",
            Value::CanSend => "can-send",
            Value::Blocked => "blocked",
            Value::Unknown => "unknown",
            Value::Nothing => "none",
            Value::Named(name) => name.as_str(),
        }
    }

    /// One of our words, as a user types it (any letter case).
    pub fn from_name(text: &str) -> Option<Value> {
        WORDS.into_iter().find(|v| v.name().eq_ignore_ascii_case(text.trim()))
    }

    /// A value as the journal and the report keep it: one of our words exactly, else a name.
    pub fn stored(text: &str) -> Value {
        WORDS.into_iter().find(|v| v.name() == text).unwrap_or_else(|| Value::Named(Name::new(text)))
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Value::stored(&text))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
