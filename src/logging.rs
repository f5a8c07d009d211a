//! Log lines on stderr: human text or JSON, level from -v/-q unless RUST_LOG says otherwise.
//! While a progress bar is drawn, each line is written with the bar suspended so neither is torn.
//! Whatever else the tool tells the user on stderr (the weakening warning, an error, what is left
//! to do) goes through [`say`], so that with `--log-format json` every line of stderr is one JSON
//! object for a log shipper; colour codes only reach a terminal.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The progress bar log lines must step around, once one is shown.
static BAR: OnceLock<Mutex<Option<indicatif::ProgressBar>>> = OnceLock::new();

pub(crate) fn set_progress_bar(bar: Option<indicatif::ProgressBar>) {
    *BAR.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

#[derive(Clone, Copy)]
struct StderrAroundBar;

pub(crate) struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        write_around_bar(&std::mem::take(&mut self.0));
    }
}

/// Writes a whole line to stderr, with the progress bar (if any) suspended meanwhile.
fn write_around_bar(line: &[u8]) {
    let bar = BAR.get().and_then(|b| b.lock().ok().and_then(|b| b.clone()));
    let write = || {
        let _ = std::io::stderr().lock().write_all(line);
    };
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::with_capacity(256))
    }
}

/// The format chosen at start; text until then.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// How loud a [`say`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loudness {
    /// Shown even with `-q`: what is left to do, warnings.
    Warning,
    Error,
}

/// Writes `text` to stdout. A reader that has gone (`remediate profiles | head`) ends the process
/// quietly with 141, the status a shell gives a command a closed pipe stopped, as it ends any Unix
/// tool, where `print!` would panic: whatever the command did is on disk by the time it speaks.
pub(crate) fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(crate::error::exit::OUTPUT_CLOSED));
        }
        tracing::warn!("cannot write to standard output: {error}");
    }
}

/// Tells the user `message` on stderr: a plain line (`prefix: message`), or with
/// `--log-format json` a log event of its own (`kind` names it for a log shipper's filters).
pub(crate) fn say(loudness: Loudness, kind: &str, message: &str) {
    match (FORMAT.get().copied().unwrap_or(LogFormat::Text), loudness) {
        (LogFormat::Json, Loudness::Warning) => tracing::warn!(kind, "{message}"),
        (LogFormat::Json, Loudness::Error) => tracing::error!(kind, "{message}"),
        (LogFormat::Text, _) => {
            let message = printable(message);
            let line = if kind.is_empty() { message.into_owned() } else { format!("{kind}: {message}") };
            write_around_bar(format!("{line}\n").as_bytes());
        }
    }
}

/// With `--log-format json`, writes `fields` as one event line, shaped as the other events are
/// (`timestamp`, `level`, then the fields), with every field in its own JSON type: a count is a
/// number, the counts an object, nothing to finish `null`.
pub(crate) fn json_event(level: &str, mut fields: serde_json::Map<String, serde_json::Value>) {
    if !is_json() {
        return;
    }
    let mut line = serde_json::Map::new();
    line.insert("timestamp".into(), crate::support::timestamp::now_rfc3339().into());
    line.insert("level".into(), level.into());
    line.append(&mut fields);
    let mut text = serde_json::Value::Object(line).to_string();
    text.push('\n');
    write_around_bar(text.as_bytes());
}

/// Whether `c` must not reach a terminal as it is: C0 controls but the tab (ESC starts a colour
/// or a cursor move, CR overwrites the line, BEL rings), DEL, C1 controls (8-bit escapes some
/// terminals obey), the line and paragraph separators, and the bidirectional controls that
/// reorder what is shown (CVE-2021-42574, "Trojan Source").
pub(crate) fn unprintable(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
        | matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` as one line safe to print: every [`unprintable`] character written out as an escape
/// (`\x1b`, `\u{202e}`), as tracing-subscriber writes ESC, BEL and C1 controls in log lines. Text
/// a server or a file sent goes through here before it reaches stdout or stderr.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unprintable) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unprintable(c) => line.push(c),
            c if (c as u32) < 0x80 => line.push_str(&format!("\\x{:02x}", c as u32)),
            c => line.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(line)
}

/// Lines of text built here, each made [`printable`]; the line breaks between them stay.
pub(crate) fn printable_lines(text: &str) -> String {
    text.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// Whether log lines are JSON objects.
pub(crate) fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let _ = FORMAT.set(format);
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,remediate={level}")));
    // Colour only for a person at a terminal (and never with NO_COLOR, https://no-color.org).
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBar)
        .with_target(false)
        .with_ansi(colour);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_written_out() {
        assert_eq!(printable("plain text\tand a tab"), "plain text\tand a tab");
        assert_eq!(printable("a\x1b[31mred\r\x07"), "a\\x1b[31mred\\x0d\\x07");
        assert_eq!(printable("one\ntwo\u{85}"), "one\\x0atwo\\u{85}");
        assert_eq!(printable("\u{202e}cod.exe\u{2066}"), "\\u{202e}cod.exe\\u{2066}");
        assert_eq!(printable_lines("first\x1b\nsecond\r"), "first\\x1b\nsecond\\x0d");
    }
}
