//! Blob storage for image bytes. [`LocalBlobStore`] keeps them under a folder; writes go to a
//! temporary file renamed into place, so a reader never sees half a blob.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::StoreError;

/// Image bytes by key (`sources/<uuid>`, `outputs/<uuid>.<ext>`).
/// A blob being read: its size and its bytes as they arrive.
pub struct BlobStream {
    pub size: u64,
    pub body: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_file_moves_the_file_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path().join("blobs")).unwrap();
        let file = dir.path().join("scratch");
        std::fs::write(&file, b"encoded output").unwrap();
        store.put_file("outputs/b.jpg", &file).await.unwrap();
        assert_eq!(
            store.get("outputs/b.jpg").await.unwrap().unwrap(),
            Bytes::from_static(b"encoded output")
        );
        assert!(!file.exists(), "the file was consumed");
        let stream = store.get_stream("outputs/b.jpg").await.unwrap().unwrap();
        assert_eq!(stream.size, 14);
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = stream.body.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), b"encoded output");
        assert!(store.get_stream("outputs/none").await.unwrap().is_none());
        assert!(store.put_file("../escape", &file).await.is_err());
    }

    #[tokio::test]
    async fn put_get_size_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path()).unwrap();
        store
            .put("outputs/a.png", Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(
            store.get("outputs/a.png").await.unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert_eq!(store.size("outputs/a.png").await.unwrap(), Some(3));
        store.delete("outputs/a.png").await.unwrap();
        assert_eq!(store.get("outputs/a.png").await.unwrap(), None);
        store.delete("outputs/a.png").await.unwrap();
    }

    #[tokio::test]
    async fn path_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path()).unwrap();
        for key in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(store.get(key).await.is_err(), "{key}");
        }
    }
}
