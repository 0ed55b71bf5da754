//! Descriptors, media types, and reading a manifest's children. A manifest is kept as the
//! bytes it arrived as; this module only parses those bytes to learn what they point at.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The short-lived OCI artifact manifest (image-spec 1.1 release candidates).
pub const OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// The annotation that carries a tag in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Every manifest type we ask registries for, in the `Accept` header.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.artifact.manifest.v1+json";

/// Registries refuse manifests larger than this (distribution: 4 MiB); so do we, which
/// bounds the memory a manifest can take.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    is_index(media_type)
        || media_type == OCI_MANIFEST
        || media_type == DOCKER_MANIFEST
        || media_type == OCI_ARTIFACT
}

/// An OCI content descriptor. Unknown fields are not kept: descriptors we write are only
/// the entries of a layout's `index.json`, which we build ourselves.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Where a foreign (non-distributable) layer is served instead of the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            artifact_type: None,
            platform: None,
            annotations: None,
            urls: None,
        }
    }

    /// The tag this descriptor carries in a layout index, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
    }

    pub fn with_ref_name(mut self, tag: Option<&str>) -> Descriptor {
        let mut ann = self.annotations.take().unwrap_or_default();
        match tag {
            Some(t) => {
                ann.insert(REF_NAME.to_string(), t.to_string());
            }
            None => {
                ann.remove(REF_NAME);
            }
        }
        self.annotations = if ann.is_empty() { None } else { Some(ann) };
        self
    }
}

/// What a manifest points at: other manifests (for an index) and blobs.
#[derive(Debug, Default)]
pub struct Children {
    pub manifests: Vec<Descriptor>,
    pub blobs: Vec<Descriptor>,
}

/// The fields of any manifest we need to walk the graph.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyManifest {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    blobs: Option<Vec<Descriptor>>,
}

/// The media type of manifest `bytes`: the one in the body if present, else the one it was
/// served or described with, else guessed from its shape.
pub fn media_type_of(bytes: &[u8], declared: Option<&str>) -> Result<String> {
    let m: AnyManifest = serde_json::from_slice(bytes).context("manifest is not valid JSON")?;
    if let Some(mt) = m.media_type.filter(|s| !s.is_empty()) {
        return Ok(mt);
    }
    if let Some(d) = declared.filter(|d| is_manifest(d)) {
        return Ok(d.to_string());
    }
    if m.schema_version == Some(1) {
        bail!("Docker schema 1 manifests are not supported");
    }
    Ok(if m.manifests.is_some() {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    }
    .to_string())
}

/// The children of manifest `bytes`, whose media type is `media_type`.
pub fn children(media_type: &str, bytes: &[u8]) -> Result<Children> {
    let m: AnyManifest = serde_json::from_slice(bytes).context("manifest is not valid JSON")?;
    let mut out = Children::default();
    if is_index(media_type) {
        for d in m.manifests.unwrap_or_default() {
            if is_manifest(&d.media_type) {
                out.manifests.push(d);
            } else {
                out.blobs.push(d);
            }
        }
    } else {
        if media_type != OCI_ARTIFACT {
            match m.config {
                Some(c) => out.blobs.push(c),
                None => bail!("image manifest has no config"),
            }
        }
        out.blobs.extend(m.layers.unwrap_or_default());
        out.blobs.extend(m.blobs.unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn index_children_are_manifests() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":3}}]}}"#
        );
        let mt = media_type_of(body.as_bytes(), None).unwrap();
        assert_eq!(mt, OCI_INDEX);
        let c = children(&mt, body.as_bytes()).unwrap();
        assert_eq!(c.manifests.len(), 1);
        assert!(c.blobs.is_empty());
    }

    #[test]
    fn image_children_are_config_then_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":2}},"layers":[{{"mediaType":"b","digest":"{D2}","size":5}}]}}"#
        );
        let mt = media_type_of(body.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        let c = children(&mt, body.as_bytes()).unwrap();
        assert_eq!(c.blobs.len(), 2);
        assert_eq!(c.blobs[1].size, 5);
    }

    #[test]
    fn null_manifests_is_an_empty_index() {
        let body = br#"{"schemaVersion":2,"manifests":null}"#;
        let c = children(OCI_INDEX, body).unwrap();
        assert!(c.manifests.is_empty());
    }

    #[test]
    fn ref_name_annotation_round_trip() {
        let d = Descriptor::new(OCI_MANIFEST, D1.parse().unwrap(), 1).with_ref_name(Some("v1"));
        assert_eq!(d.ref_name(), Some("v1"));
        assert_eq!(d.with_ref_name(None).annotations, None);
    }
}
