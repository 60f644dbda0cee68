//! The data disk's reserve: the one place that knows how much free space the filesystem holding the
//! data directory must keep, and the check every durable write a function can drive makes first.
//!
//! The other side is any credentialed client, a function's session credential included: SQS
//! SendMessage/SendMessageBatch (`queues.db`, messages kept up to 14 days) and async Invoke (the journal
//! in `nimbus.db`) write what they are sent. AWS keeps these on its own disks; here they share the data
//! disk with function metadata, code and the environments' `/tmp` images, and when it is full every
//! write fails, `nimbus.db`'s included. So below the reserve those writes are refused (SQS: 503
//! `ServiceUnavailable`; Lambda: 500 `ServiceException`, both retried by the SDKs), while reads, deletes
//! and the administrator's own writes go on, and the space that is left stays for what was already
//! promised. Said once in the server's log when the disk goes short, and once when it has room again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The default reserve (`--disk-reserve-mb`).
pub const DISK_RESERVE_MB_DEFAULT: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the data disk has {free_mb} MB free, below the {reserve_mb} MB it keeps in reserve")]
pub struct BelowReserve {
    pub free_mb: u64,
    pub reserve_mb: u64,
}

#[derive(Debug)]
pub struct DataDisk {
    dir: PathBuf,
    reserve_bytes: u64,
    /// Whether the last check found the disk short (to say it once per change).
    short: AtomicBool,
}

impl DataDisk {
    pub fn new(dir: PathBuf, reserve_bytes: u64) -> Self {
        Self { dir, reserve_bytes, short: AtomicBool::new(false) }
    }

    /// Whether a durable write driven by a client (`what`, for the log line) may go ahead: one
    /// `statvfs`, no IO. A free space that cannot be read never refuses.
    pub fn check(&self, what: &'static str) -> Result<(), BelowReserve> {
        let free = free_bytes(&self.dir);
        let short = free.is_some_and(|free| free < self.reserve_bytes);
        let was = self.short.swap(short, Ordering::Relaxed);
        let (free_mb, reserve_mb) = (free.unwrap_or(0) / (1024 * 1024), self.reserve_bytes / (1024 * 1024));
        match (was, short) {
            (false, true) => tracing::error!(
                data_dir = %self.dir.display(),
                free_mb,
                reserve_mb,
                refused = what,
                "the data disk is below its reserve: function logs are dropped, SQS sends and async invocations refused, until there is room"
            ),
            (true, false) => tracing::warn!(free_mb, "the data disk has room again: writes are accepted again"),
            _ => {}
        }
        if short { Err(BelowReserve { free_mb, reserve_mb }) } else { Ok(()) }
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    Some(st.blocks_available().saturating_mul(st.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_reserve_and_accepts_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert_eq!(DataDisk::new(dir.path().into(), 0).check("test"), Ok(()));
        let short = DataDisk::new(dir.path().into(), free.saturating_mul(4).max(1 << 40));
        assert!(short.check("test").is_err());
        assert!(short.check("test").is_err(), "stays refused while short");
        // A path whose space cannot be read never refuses.
        assert_eq!(DataDisk::new("/nonexistent/nimbus".into(), u64::MAX).check("test"), Ok(()));
    }
}
