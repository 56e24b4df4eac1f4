//! Opening the files that hold private data (the secrets file, the audit log, the REPL
//! history): appended to, created with mode 0600, never reached through a symbolic link.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// What to do when an existing file can be read by group or others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// Refuse it: secrets must not land in a file others can read.
    Refuse,
    /// Set its mode to 0600 (the REPL history: cfql's own file).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    Tighten,
    /// Leave it (the audit log holds no secrets; a team may share it on purpose).
    Keep,
}

/// Opens `path` for appending, creating it with mode 0600. A symbolic link is refused,
/// and so is anything but a regular file: the open itself never waits (a FIFO without a
/// reader would block it forever; with `O_NONBLOCK` it fails or opens at once, and is then
/// refused for not being a regular file). `shared` says what to do with a file whose mode
/// lets group or others in.
pub fn open_append(path: &Path, shared: Shared) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| {
        match e.raw_os_error() {
            Some(ELOOP) => io::Error::new(e.kind(), "is a symbolic link; cfql does not follow links for files that hold private data (name the real file)"),
            Some(ENXIO) => io::Error::new(e.kind(), "is not a regular file (a FIFO or socket); name a regular file"),
            _ => e,
        }
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file (a device, FIFO or directory); name a regular file",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match shared {
                Shared::Refuse => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "can be read by others (mode {mode:o}); secrets are only written to a file of mode 600: run `chmod 600 {}` or name a new file",
                            path.display()
                        ),
                    ));
                }
                Shared::Tighten => file.set_permissions(std::fs::Permissions::from_mode(0o600))?,
                Shared::Keep => {}
            }
        }
    }
    let _ = shared;
    Ok(file)
}

#[cfg(unix)]
const ELOOP: i32 = libc::ELOOP;
#[cfg(not(unix))]
const ELOOP: i32 = -1;
#[cfg(unix)]
const ENXIO: i32 = libc::ENXIO;
#[cfg(not(unix))]
const ENXIO: i32 = -2;

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    #[test]
    fn creates_0600_refuses_links_and_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        open_append(&p, Shared::Refuse).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = open_append(&link, Shared::Refuse).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = open_append(&p, Shared::Refuse).unwrap_err();
        assert!(
            e.to_string().contains("mode 644") && e.to_string().contains("chmod 600"),
            "{e}"
        );
        open_append(&p, Shared::Tighten).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(open_append(dir.path(), Shared::Keep).is_err());
    }

    /// A FIFO, with or without a reader, is refused at once (it used to block the open).
    #[test]
    fn a_fifo_or_a_device_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_append(&fifo, Shared::Keep).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let e = open_append(&fifo, Shared::Keep).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        drop(reader);
        let e = open_append(Path::new("/dev/null"), Shared::Keep).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
