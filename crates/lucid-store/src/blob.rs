//! Blob storage for image bytes. [`LocalBlobStore`] keeps them under a folder; writes go to a
//! temporary file renamed into place, so a reader never sees half a blob.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::StoreError;

/// A blob being read: its size and its bytes as they arrive.
pub struct BlobStream {
    pub size: u64,
    pub body: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
}

/// What a presigned link may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedMethod {
    Get,
    Head,
}

/// Image bytes by key (`sources/<uuid>`, `outputs/<uuid>.<ext>`).
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// The blob's size, without reading it.
    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Deleting a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The blob as a stream, for sending large files without holding them. By default reads
    /// it whole.
    async fn get_stream(&self, key: &str) -> Result<Option<BlobStream>, StoreError> {
        Ok(self.get(key).await?.map(|bytes| BlobStream {
            size: bytes.len() as u64,
            body: Box::pin(futures::stream::once(async { Ok(bytes) })),
        }))
    }
    /// Stores the file's contents under `key`, consuming the file: for outputs too large to
    /// hold in memory. By default reads it and calls [`BlobStore::put`].
    async fn put_file(&self, key: &str, file: &Path) -> Result<(), StoreError> {
        let bytes = tokio::fs::read(file).await?;
        self.put(key, Bytes::from(bytes)).await?;
        tokio::fs::remove_file(file).await?;
        Ok(())
    }
    /// A URL that lets its holder `method` the blob directly from the storage service for
    /// `expires_in`, without lucid's credentials; `None` where the store cannot presign (a
    /// local folder: the server signs its own `/files/…` links instead).
    async fn signed_url(
        &self,
        _key: &str,
        _method: SignedMethod,
        _expires_in: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(LocalBlobStore { root })
    }

    /// Keys are relative paths of normal components only: no `..`, no absolute paths.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(StoreError::Invalid(format!("bad blob key {key:?}")));
        }
        Ok(self.root.join(rel))
    }
}

fn not_found_is_none<T>(r: std::io::Result<T>) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(not_found_is_none(tokio::fs::read(self.path(key)?).await)?.map(Bytes::from))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(not_found_is_none(tokio::fs::metadata(self.path(key)?).await)?.map(|m| m.len()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        not_found_is_none(tokio::fs::remove_file(self.path(key)?).await)?;
        Ok(())
    }

    async fn get_stream(&self, key: &str) -> Result<Option<BlobStream>, StoreError> {
        let Some(file) = not_found_is_none(tokio::fs::File::open(self.path(key)?).await)? else {
            return Ok(None);
        };
        let size = file.metadata().await?.len();
        Ok(Some(BlobStream {
            size,
            body: Box::pin(tokio_util::io::ReaderStream::with_capacity(
                file,
                256 * 1024,
            )),
        }))
    }

    /// Moved into place: renamed when on the same file system, else copied in chunks.
    async fn put_file(&self, key: &str, file: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        if tokio::fs::rename(file, &path).await.is_ok() {
            return Ok(());
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        tokio::fs::copy(file, &tmp).await?;
        tokio::fs::rename(&tmp, &path).await?;
        tokio::fs::remove_file(file).await?;
        Ok(())
    }
}
