//! Local secrets that `make run` creates on first start (token keys, the webhook sealing key):
//! written once, readable by the owner only, never overwritten.

use std::path::Path;

/// Writes `contents` to a new file at `path` with mode 0600. `Ok(false)` when the file exists
/// already (another service or replica created it first): the caller reads theirs instead.
pub fn create_new(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => std::io::Write::write_all(&mut file, contents).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_private_and_an_existing_one_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("private-file-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("key");
        assert!(create_new(&path, b"first").unwrap_or_else(|e| panic!("{e}")));
        assert!(!create_new(&path, b"second").unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
