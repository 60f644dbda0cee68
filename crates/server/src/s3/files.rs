//! Object bodies on disk, under `<data>/s3/`: `tmp/` for uploads in progress and `objects/` for
//! committed bodies, each a file named by a fresh UUID. A body is streamed to `tmp/` (never buffered
//! whole), fsynced, renamed into `objects/` (and the directory fsynced), and only then does the caller
//! commit the row naming it: a crash leaves at worst an unnamed file, which [`Bodies::open`] and
//! [`Bodies::sweep`] remove at the next start.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use md5::Digest as _;
use s3s::checksum::ChecksumHasher;
use s3s::dto::StreamingBlob;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

/// How much of a body file one read hands to the response stream.
const READ_CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The client's body stream failed (disconnect, bad aws-chunked framing or chunk signature).
    #[error("reading the request body failed: {source}")]
    Body {
        #[source]
        source: s3s::StdError,
    },
    #[error("the body is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FilesError + 'a {
    move |source| FilesError::Io { op, path: path.to_owned(), source }
}

/// A body written to `objects/`, not yet named by any row.
#[derive(Debug)]
pub struct Written {
    pub file: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: s3s::dto::Checksum,
}

/// Removes a temporary file when an upload ends before it was renamed: on error, and when the request
/// future is dropped because the client went away.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bodies {
    objects: PathBuf,
    tmp: PathBuf,
}

impl Bodies {
    /// Creates `<data>/s3/{objects,tmp}` and empties `tmp/` (uploads a previous run never finished).
    pub fn open(data_dir: &Path) -> Result<Bodies, FilesError> {
        let root = data_dir.join("s3");
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [&objects, &tmp] {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        for entry in std::fs::read_dir(&tmp).map_err(io("read", &tmp))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Bodies { objects, tmp })
    }

    /// Removes body files no row names: renamed into place by a run that died before its commit, or
    /// replaced by a commit whose run died before removing the old one.
    pub fn sweep(&self, keep: &HashSet<String>) -> Result<usize, FilesError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.objects).map_err(io("read", &self.objects))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.objects.join(file)
    }

    /// Streams `body` into a new durable file, computing its MD5 and the checksums `hasher` was set up
    /// for; refuses bodies over `max` bytes.
    pub async fn write(
        &self,
        mut body: StreamingBlob,
        max: u64,
        mut hasher: ChecksumHasher,
    ) -> Result<Written, FilesError> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.tmp.join(&name);
        let mut guard = TempGuard(Some(tmp.clone()));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io("create", &tmp))?;
        let mut md5 = md5::Md5::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| FilesError::Body { source })?;
            size += chunk.len() as u64;
            if size > max {
                return Err(FilesError::TooLarge { max });
            }
            md5.update(&chunk);
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(io("write", &tmp))?;
        }
        self.finish(out, &name, &mut guard).await?;
        Ok(Written { file: name, size, md5: md5.finalize().into(), checksum: hasher.finalize() })
    }

    /// Makes a written temporary file durable under its final name.
    async fn finish(&self, out: tokio::fs::File, name: &str, guard: &mut TempGuard) -> Result<(), FilesError> {
        let tmp = self.tmp.join(name);
        out.sync_all().await.map_err(io("fsync", &tmp))?;
        drop(out);
        let dest = self.path(name);
        tokio::fs::rename(&tmp, &dest).await.map_err(io("rename", &dest))?;
        guard.0 = None;
        let dir = self.objects.clone();
        // The rename is durable only once the directory is.
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
            .await
            .map_err(|e| FilesError::Io { op: "fsync", path: self.objects.clone(), source: std::io::Error::other(e) })?
            .map_err(io("fsync", &self.objects))?;
        Ok(())
    }

    /// Joins committed part bodies into one new durable file (CompleteMultipartUpload); answers its
    /// name. The parts stay until the caller's commit names the new file instead.
    pub async fn concat(&self, parts: &[String]) -> Result<String, FilesError> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.tmp.join(&name);
        let mut guard = TempGuard(Some(tmp.clone()));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io("create", &tmp))?;
        for part in parts {
            let path = self.path(part);
            let mut f = tokio::fs::File::open(&path).await.map_err(io("open", &path))?;
            tokio::io::copy(&mut f, &mut out).await.map_err(io("copy", &path))?;
        }
        self.finish(out, &name, &mut guard).await?;
        Ok(name)
    }

    /// Streams bytes `range` of a body file from disk.
    pub async fn read(&self, file: &str, range: std::ops::Range<u64>) -> Result<StreamingBlob, FilesError> {
        let path = self.path(file);
        let mut f = tokio::fs::File::open(&path).await.map_err(io("open", &path))?;
        f.seek(SeekFrom::Start(range.start)).await.map_err(io("seek", &path))?;
        let remaining = range.end - range.start;
        let stream = futures::stream::unfold((f, remaining, path), |(mut f, remaining, path)| async move {
            if remaining == 0 {
                return None;
            }
            let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match f.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{} is short", path.display()))),
                    (f, 0, path),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (f, remaining - n as u64, path)))
                }
                Err(e) => Some((Err(e), (f, 0, path))),
            }
        });
        Ok(StreamingBlob::wrap(stream))
    }

    /// Copies a committed body into a new durable file (CopyObject), as [`Bodies::write`] would.
    pub async fn copy(&self, file: &str, size: u64, hasher: ChecksumHasher) -> Result<Written, FilesError> {
        let body = self.read(file, 0..size).await?;
        self.write(body, u64::MAX, hasher).await
    }

    /// Removes a body no row names any more.
    pub fn remove(&self, file: &str) {
        let path = self.path(file);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove an object body");
        }
    }
}
