//! Local files, read and written as a tool that maps which accounts have MFA off must: every file
//! read has a size cap, everything written is for the owner alone (directories 0700, files 0600),
//! and nothing written follows a link somebody planted in the report directory.
//!
//! Report files are written under a `.partial` name and renamed into place, so a reader never
//! sees half a file: [`write_atomic`] for files written at once, [`create_partial`] and
//! [`commit_partial`] for files streamed in pieces.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Caps on what is read, so a hostile or broken file cannot take the memory.
pub(crate) mod cap {
    /// A secret, a federated token, a tenant list.
    pub(crate) const SMALL: u64 = 1024 * 1024;
    /// A run record, a profile, an exclusion list.
    pub(crate) const MEDIUM: u64 = 64 * 1024 * 1024;
}

/// Reads a whole file, refusing one larger than `cap` bytes (the error says so).
pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {} KiB, more than such a file ever holds", cap / 1024),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`], as UTF-8 text.
pub(crate) fn read_text_capped(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

/// Creates `directory` (and its parents) readable by the owner alone. An existing directory is
/// left as it is.
pub(crate) fn create_private_dir(directory: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory)
}

fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Creates `path` afresh for the owner alone: whatever stood there (a file, or a link planted to
/// make us overwrite another file) is removed first, and the file is created exclusively.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    private(OpenOptions::new().write(true).create_new(true)).open(path)
}

/// Opens `path` for appending, creating it for the owner alone; refuses a link.
pub(crate) fn open_append_private(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().append(true).create(true)).open(path)
}

/// Opens `path` for reading and writing, creating it for the owner alone; refuses a link.
pub(crate) fn open_private(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().read(true).write(true).create(true).truncate(false)).open(path)
}

/// The temporary name a report file is written under.
pub(crate) fn partial_path(directory: &Path, name: &str) -> PathBuf {
    directory.join(format!("{name}.partial"))
}

/// Starts writing `directory/name` under its temporary name.
pub(crate) fn create_partial(directory: &Path, name: &str) -> io::Result<File> {
    create_new_private(&partial_path(directory, name))
}

/// Makes a file started with [`create_partial`] durable, then moves it into place.
pub(crate) fn commit_partial(directory: &Path, name: &str, file: File) -> io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(partial_path(directory, name), directory.join(name))
}

/// Writes `directory/name` whole: a temporary file, synced, then renamed into place.
pub(crate) fn write_atomic(directory: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_partial(directory, name)?;
    file.write_all(bytes)?;
    commit_partial(directory, name, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 2048]).unwrap();
        assert!(read_capped(&path, 1024).unwrap_err().to_string().contains("larger than 1 KiB"));
        assert_eq!(read_capped(&path, 2048).unwrap().len(), 2048);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_not_followed_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let report = dir.path().join("report");
        create_private_dir(&report).unwrap();
        std::os::unix::fs::symlink(&victim, partial_path(&report, "results.csv")).unwrap();
        std::os::unix::fs::symlink(&victim, report.join("journal.jsonl")).unwrap();
        write_atomic(&report, "results.csv", b"line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(open_append_private(&report.join("journal.jsonl")).is_err(), "a link is refused");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&report.join("results.csv")), 0o600);
        assert_eq!(mode(&report), 0o700);
    }
}
