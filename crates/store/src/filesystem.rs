//! What the filesystem says about a database before SQLite opens it: whether its folder is
//! on a network filesystem, and whether its `-wal` and `-shm` are another database's.

use std::path::{Path, PathBuf};

/// The name of the network filesystem that holds `dir`, if it is one: SQLite's locking and
/// WAL's shared memory do not work across the machines of a network filesystem
/// (<https://sqlite.org/wal.html>), so the database must not live there.
pub fn network_filesystem(dir: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is a buffer of the size statfs
    // writes; it is read only when statfs says it wrote it.
    let stat = unsafe {
        if libc::statfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    filesystem_name(stat.f_type as i64)
}

/// The network filesystem with the magic number `f_type` (from statfs(2)), if it is one.
fn filesystem_name(f_type: i64) -> Option<&'static str> {
    Some(match f_type as u32 {
        0x6969 => "nfs",
        0x517b => "smb",
        0xff53_4d42 => "cifs",
        0xfe53_4d42 => "smb2",
        0x00c3_6400 => "ceph",
        0x0bd0_0bd0 => "lustre",
        0x4750_4653 => "gpfs",
        0x1983_0326 => "beegfs",
        0x0102_1997 => "9p",
        0x5346_414f => "afs",
        0x0000_6b69_u32 => "orangefs",
        _ => return None,
    })
}

/// Whether a process other than this one holds a POSIX lock on `len` bytes of `file` from
/// `start` (false when the file cannot be opened).
fn locked_by_another(file: &Path, start: i64, len: i64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(file) else {
        return false;
    };
    // SAFETY: a zeroed flock is a valid value; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start as _;
    lock.l_len = len as _;
    // SAFETY: `f` is an open descriptor and `lock` a flock it may fill in.
    let asked = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut lock) };
    asked == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

/// Whether the `-shm` (and so the `-wal`) beside `path` is another database's: every open
/// WAL connection holds a read lock on the DMS byte of the `-shm` (byte 128, SQLite's unix
/// VFS) and on the SHARED bytes of its database file (from 0x40000002, 510 bytes). A `-shm`
/// in use by another process while nobody has `path` itself open is that of a database
/// that was at `path` before a file was moved over it, still open in that process. SQLite cannot tell (a WAL's frames are checked against the WAL's own header, not the
/// database file's: sqlite.org/walformat.html), and would read that database's pages.
/// Locks held by this process are not seen: its read-only connections take care of
/// themselves (the first on a new file starts the `-shm` over).
pub(crate) fn foreign_wal(path: &Path) -> bool {
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    locked_by_another(&shm, 128, 1) && !locked_by_another(path, 0x4000_0002, 510)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_named_and_local_ones_are_not() {
        assert_eq!(filesystem_name(0x6969), Some("nfs"));
        assert_eq!(filesystem_name(0xff53_4d42), Some("cifs"));
        assert_eq!(filesystem_name(0xef53), None, "ext4");
        assert_eq!(filesystem_name(0x0102_1994), None, "tmpfs");
        assert_eq!(network_filesystem(Path::new("/proc/self")), None);
    }
}
