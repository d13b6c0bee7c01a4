//! The shared [`BlobStore`]: any S3-compatible object store, through object_store. Every node
//! of an installation names the same `s3://bucket[/prefix]`; credentials and the endpoint come
//! from the usual `AWS_*` variables. Outputs are uploaded in parts straight from the worker's
//! scratch file, and downloads can be handed out as presigned URLs.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use crate::StoreError;
use crate::blob::{BlobStore, BlobStream, SignedMethod};

/// Outputs larger than this are uploaded in parts of this size.
const PART_SIZE: usize = 16 * 1024 * 1024;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    /// Key prefix inside the bucket, without slashes at either end; may be empty.
    prefix: String,
}

impl S3BlobStore {
    /// Opens `s3://bucket[/prefix]` with settings from the `AWS_*` environment variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`, …), then from `settings` (object_store's names, e.g.
    /// `aws_endpoint`), which win. An S3 endpoint that is not AWS is addressed path-style.
    pub fn open<'a>(
        url: &str,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, StoreError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            StoreError::Invalid(format!("{url:?} is not an s3://bucket[/prefix] URL"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Invalid(format!("{url:?} names no bucket")));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in settings {
            let key: AmazonS3ConfigKey = key
                .parse()
                .map_err(|e| StoreError::Invalid(format!("S3 setting {key:?}: {e}")))?;
            builder = builder.with_config(key, value);
        }
        if builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_none()
            && builder
                .get_config_value(&AmazonS3ConfigKey::DefaultRegion)
                .is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder.build()?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The object path of a blob key; keys are relative paths of plain segments.
    fn path(&self, key: &str) -> Result<Path, StoreError> {
        let plain = !key.is_empty()
            && key
                .split('/')
                .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
        if !plain {
            return Err(StoreError::Invalid(format!("bad blob key {key:?}")));
        }
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(full).map_err(|e| StoreError::Invalid(format!("bad blob key {key:?}: {e}")))
    }
}

/// Blobs are stored with their image type, so that presigned downloads carry it.
fn attributes(key: &str) -> Attributes {
    let content_type = match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("tif" | "tiff") => "image/tiff",
        _ => return Attributes::new(),
    };
    Attributes::from_iter([(Attribute::ContentType, content_type)])
}

fn put_options(key: &str) -> PutOptions {
    PutOptions {
        attributes: attributes(key),
        ..PutOptions::default()
    }
}

fn not_found_is_none<T>(r: object_store::Result<T>) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put_opts(&self.path(key)?, PutPayload::from(bytes), put_options(key))
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match not_found_is_none(self.store.get(&self.path(key)?).await)? {
            Some(result) => Ok(Some(result.bytes().await?)),
            None => Ok(None),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(not_found_is_none(self.store.head(&self.path(key)?).await)?.map(|meta| meta.size))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        not_found_is_none(self.store.delete(&self.path(key)?).await)?;
        Ok(())
    }

    async fn get_stream(&self, key: &str) -> Result<Option<BlobStream>, StoreError> {
        let Some(result) = not_found_is_none(self.store.get(&self.path(key)?).await)? else {
            return Ok(None);
        };
        Ok(Some(BlobStream {
            size: result.meta.size,
            body: result.into_stream().map_err(std::io::Error::other).boxed(),
        }))
    }

    /// Small files in one request; larger ones in parts read from the file as they go, so an
    /// output of any size passes through a few parts' worth of memory.
    async fn put_file(&self, key: &str, file: &FsPath) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let mut reader = tokio::fs::File::open(file).await?;
        let size = reader.metadata().await?.len();
        if size <= PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut bytes).await?;
            self.store
                .put_opts(&path, PutPayload::from(bytes), put_options(key))
                .await?;
        } else {
            let options = PutMultipartOptions {
                attributes: attributes(key),
                ..PutMultipartOptions::default()
            };
            let upload = self.store.put_multipart_opts(&path, options).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut chunk = vec![0u8; 1024 * 1024];
            let copied: Result<(), StoreError> = async {
                loop {
                    let n = reader.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    writer.write(&chunk[..n]);
                }
            }
            .await;
            match copied {
                Ok(()) => {
                    writer.finish().await?;
                }
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
        }
        tokio::fs::remove_file(file).await?;
        Ok(())
    }

    async fn signed_url(
        &self,
        key: &str,
        method: SignedMethod,
        expires_in: Duration,
    ) -> Result<Option<String>, StoreError> {
        let method = match method {
            SignedMethod::Get => object_store::signer::Method::GET,
            SignedMethod::Head => object_store::signer::Method::HEAD,
        };
        let url = self
            .store
            .signed_url(method, &self.path(key)?, expires_in)
            .await?;
        Ok(Some(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(url: &str) -> Result<S3BlobStore, StoreError> {
        S3BlobStore::open(
            url,
            [
                ("aws_endpoint", "http://127.0.0.1:9"),
                ("aws_allow_http", "true"),
                ("aws_access_key_id", "k"),
                ("aws_secret_access_key", "s"),
            ],
        )
    }

    #[test]
    fn urls_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(store("s3://b").unwrap().prefix, "");
        assert_eq!(store("s3://b/one/two/").unwrap().prefix, "one/two");
        assert_eq!(
            store("s3://b/p")
                .unwrap()
                .path("outputs/x.jpg")
                .unwrap()
                .as_ref(),
            "p/outputs/x.jpg"
        );
        assert!(store("s3://").is_err());
        assert!(store("file:///tmp").is_err());
    }

    #[test]
    fn path_escapes_are_refused() {
        let s = store("s3://b/p").unwrap();
        for key in ["../x", "/etc/passwd", "a/../../b", "", "a//b", "a/./b"] {
            assert!(s.path(key).is_err(), "{key}");
        }
    }
}
