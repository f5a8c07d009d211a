//! Log lines on stderr: human text or JSON, level from -v/-q unless RUST_LOG says otherwise.
//! While a progress bar is drawn, each line is written with the bar suspended so neither is torn.

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

pub fn set_progress_bar(bar: Option<indicatif::ProgressBar>) {
    *BAR.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

#[derive(Clone, Copy)]
struct StderrAroundBar;

pub struct LineWriter(Vec<u8>);

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
        let line = std::mem::take(&mut self.0);
        let bar = BAR.get().and_then(|b| b.lock().ok().and_then(|b| b.clone()));
        let write = || {
            let _ = std::io::stderr().lock().write_all(&line);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::with_capacity(256))
    }
}

pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,remediate={level}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(StderrAroundBar).with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = result;
}
