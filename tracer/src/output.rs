//! Files the tracer writes. It usually runs as root (under sudo) in
//! directories other users can write to, so: never follow a symlink at an
//! output path, never write anywhere but the requested path (write a fresh
//! temporary file beside it, then rename it into place), and give the files
//! to the user who ran sudo.

use std::{
    ffi::CString,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::{ffi::OsStrExt, fs::OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::report::text::StallsBy;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("--output {0} exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the report goes, checked before tracing starts so that a typo does
/// not cost the user a whole recording.
#[derive(Debug, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    /// How the text report groups stalls (`--group-by`).
    pub stalls_by: StallsBy,
    /// `--html FILE`: the one-page HTML report.
    pub html: Option<PathBuf>,
}

impl Outputs {
    pub fn prepare(
        json: Option<PathBuf>,
        dir: Option<PathBuf>,
        html: Option<PathBuf>,
    ) -> Result<Self, OutputError> {
        if let Some(dir) = &dir {
            match fs::symlink_metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(OutputError::NotADirectory(dir.clone())),
                Err(_) => create_dir(dir)?,
            }
            check_writable(dir)?;
        }
        for file in [&json, &html].into_iter().flatten() {
            check_file(file)?;
        }
        Ok(Self {
            json,
            dir,
            html,
            stalls_by: StallsBy::default(),
        })
    }

    pub fn grouping_stalls_by(self, stalls_by: StallsBy) -> Self {
        Self { stalls_by, ..self }
    }

    /// Writes the JSON report to `--json`, the HTML page to `--html` and
    /// `files` (name, contents) into `--output DIR`, as requested.
    pub fn write(
        &self,
        files: &[(&str, &[u8])],
        json: &str,
        html: Option<&str>,
    ) -> Result<(), OutputError> {
        if let Some(path) = &self.json {
            write_file(path, json)?;
        }
        if let (Some(path), Some(html)) = (&self.html, html) {
            write_file(path, html)?;
        }
        if let Some(dir) = &self.dir {
            for (name, contents) in files {
                write_bytes(&dir.join(name), contents)?;
            }
        }
        Ok(())
    }
}

/// Checks that a file can be written at `path` (not a directory, in a
/// writable directory), before a recording that would be lost otherwise.
pub fn check_file(path: &Path) -> Result<(), OutputError> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(OutputError::Write {
            path: path.to_path_buf(),
            source: io::Error::other("it is a directory"),
        });
    }
    check_writable(parent_dir(path)).map_err(|e| match e {
        OutputError::Write { source, .. } => OutputError::Write {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    })
}

/// The directory a file path is in ("." for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn create_dir(dir: &Path) -> Result<(), OutputError> {
    fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    give_to_invoking_user(dir);
    Ok(())
}

fn check_writable(dir: &Path) -> Result<(), OutputError> {
    let probe = temp_file(dir).map_err(|source| OutputError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let _ = fs::remove_file(probe.1);
    Ok(())
}

/// A new file in `dir` that did not exist before (O_EXCL) and is not a
/// symlink (O_NOFOLLOW).
fn temp_file(dir: &Path) -> io::Result<(File, PathBuf)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(".tracer-{}-{attempt}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

/// Writes `contents` to `path` atomically: a symlink at `path` is replaced,
/// never followed.
pub fn write_file(path: &Path, contents: &str) -> Result<(), OutputError> {
    write_bytes(path, contents.as_bytes())
}

/// [`write_file`] for binary contents.
pub fn write_bytes(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    let error = |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, temp) = temp_file(parent_dir(path)).map_err(error)?;
    let result = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(source) = result {
        let _ = fs::remove_file(&temp);
        return Err(error(source));
    }
    give_to_invoking_user(path);
    Ok(())
}

/// Under sudo, files belong to the user who ran sudo, not to root.
fn give_to_invoking_user(path: &Path) {
    let id = |name| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) else {
        return;
    };
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: lchown reads a valid NUL-terminated path; it does not follow
    // a symlink.
    if unsafe { libc::lchown(c_path.as_ptr(), uid, gid) } != 0 {
        log::warn!(
            "cannot give {} to uid {uid}: {}",
            path.display(),
            io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_replaces_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("report.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_file(&link, "{}").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&link).unwrap(), "{}");
        assert!(!fs::symlink_metadata(&link).unwrap().is_symlink());
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn refuses_non_directory_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            Outputs::prepare(None, Some(file), None),
            Err(OutputError::NotADirectory(_))
        ));
        let created = dir.path().join("a/b");
        Outputs::prepare(None, Some(created.clone()), None).unwrap();
        assert!(created.is_dir());
        assert!(Outputs::prepare(Some(dir.path().join("missing/x.json")), None, None).is_err());
        assert!(Outputs::prepare(Some(dir.path().to_path_buf()), None, None).is_err());
        assert!(Outputs::prepare(None, None, Some(dir.path().join("missing/r.html"))).is_err());
    }
}
