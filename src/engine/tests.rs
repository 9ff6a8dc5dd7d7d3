//! The engine against in-memory sources and destinations: properties of the placement state
//! machine and of manifest pushes that no real registry shows on demand (how often a blob is
//! read or a manifest pushed). Real registries and archives are exercised in `tests/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;

use super::*;
use crate::oci::{ImageTree, Manifest, ManifestOutline};
use crate::reference::{Digest, ManifestSelector, Reference};

#[derive(Default)]
struct MemorySource {
    manifests: HashMap<Digest, Manifest>,
    tags: HashMap<String, Digest>,
    blobs: HashMap<Digest, Bytes>,
    /// Bytes served instead of a blob's own.
    served_instead: HashMap<Digest, Bytes>,
    /// Bytes served instead of a blob's own from its second read on.
    served_later: HashMap<Digest, Bytes>,
    reads: Mutex<HashMap<Digest, usize>>,
    /// How many manifests each `read_manifests` call asked for.
    manifest_reads: Mutex<Vec<usize>>,
    /// Looking up referrers fails.
    referrers_fail: bool,
    /// Listed as referrers of every subject, though the source does not hold them.
    gone_referrers: Vec<Digest>,
    /// Resolves under way now, and the most at once.
    resolving: Mutex<(usize, usize)>,
}

impl MemorySource {
    fn blob(&mut self, content: &str) -> (Digest, usize) {
        let d = Digest::sha256_of(content.as_bytes());
        self.blobs.insert(d.clone(), Bytes::from(content.to_string()));
        (d, content.len())
    }

    fn manifest(&mut self, json: String) -> Manifest {
        let m = Manifest::new(Bytes::from(json), None, None).unwrap();
        self.manifests.insert(m.digest.clone(), m.clone());
        m
    }

    fn image(&mut self, config: &str, layers: &[&str]) -> Manifest {
        let desc = |(d, n): (Digest, usize), t: &str| format!(r#"{{"mediaType":"{t}","digest":"{d}","size":{n}}}"#);
        let config = desc(self.blob(config), "application/vnd.oci.image.config.v1+json");
        let layers: Vec<String> = layers
            .iter()
            .map(|l| desc(self.blob(l), "application/vnd.oci.image.layer.v1.tar"))
            .collect();
        self.manifest(format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{}]}}"#,
            layers.join(",")
        ))
    }

    fn index(&mut self, children: &[&Manifest]) -> Manifest {
        let entries: Vec<String> = children
            .iter()
            .map(|m| {
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
                    m.media_type,
                    m.digest,
                    m.bytes.len()
                )
            })
            .collect();
        self.manifest(format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        ))
    }

    fn tag(&mut self, reference: &str, m: &Manifest) {
        self.tags.insert(reference.to_string(), m.digest.clone());
    }

    fn reads_of(&self, d: &Digest) -> usize {
        self.reads.lock().unwrap().get(d).copied().unwrap_or(0)
    }
}

fn missing(what: impl std::fmt::Display) -> CopyError {
    CopyError::UnknownImage(what.to_string())
}

impl Source for MemorySource {
    async fn resolve(&self, job: &ImageJob) -> Result<ImageTree, CopyError> {
        let digest = match job.source_selector() {
            ManifestSelector::Digest(d) => d,
            ManifestSelector::Tag(t) => self
                .tags
                .get(&format!("{}:{t}", job.source.name()))
                .cloned()
                .ok_or_else(|| missing(&job.source))?,
        };
        {
            let mut resolving = self.resolving.lock().unwrap();
            resolving.0 += 1;
            resolving.1 = resolving.1.max(resolving.0);
        }
        // a round trip: the others start meanwhile
        tokio::task::yield_now().await;
        self.resolving.lock().unwrap().0 -= 1;
        let top = self.manifests.get(&digest).ok_or_else(|| missing(&digest))?;
        let tree = ImageTree::build(ManifestOutline::of(top)?, |d| {
            let m = self.manifests.get(&d.digest).ok_or_else(|| missing(&d.digest));
            let outline = m.and_then(|m| Ok(ManifestOutline::of(m)?));
            async move { outline }
        })
        .await?;
        Ok(tree)
    }

    async fn read_manifests(&self, wanted: Vec<ManifestRead>) -> Result<Vec<Manifest>, CopyError> {
        self.manifest_reads.lock().unwrap().push(wanted.len());
        wanted
            .iter()
            .map(|w| {
                let d = &w.manifest.digest;
                self.manifests.get(d).cloned().ok_or_else(|| missing(d))
            })
            .collect()
    }

    async fn stream_blobs<F, Fut>(&self, blobs: Vec<BlobRead>, deliver: F) -> Vec<(Digest, CopyError)>
    where
        F: Fn(BlobRead, BlobBody) -> Fut + Send + Sync,
        Fut: std::future::Future<Output = Result<(), CopyError>> + Send + 'static,
    {
        let mut failures = Vec::new();
        for read in blobs {
            let digest = read.descriptor.digest.clone();
            let reads = {
                let mut reads = self.reads.lock().unwrap();
                let n = reads.entry(digest.clone()).or_default();
                *n += 1;
                *n
            };
            let later = self.served_later.get(&digest).filter(|_| reads > 1);
            let bytes = later
                .or(self.served_instead.get(&digest))
                .unwrap_or(&self.blobs[&digest])
                .clone();
            let body: BlobBody = Box::pin(futures_util::stream::iter([Ok(bytes)]));
            if let Err(e) = deliver(read, body).await {
                failures.push((digest, e));
            }
        }
        failures
    }

    async fn referrers(&self, origin: &Reference, subject: &Digest) -> Result<Vec<FoundReferrer>, CopyError> {
        if self.referrers_fail {
            return Err(missing("a referrers listing"));
        }
        let mut found: Vec<FoundReferrer> = self
            .gone_referrers
            .iter()
            .map(|d| FoundReferrer {
                tag: None,
                digest: Some(d.clone()),
                kind: crate::oci::ReferrerKind::Referrer,
                names_subject: true,
            })
            .collect();
        let mut with_subject: Vec<&Manifest> = self
            .manifests
            .values()
            .filter(|m| crate::oci::subject_of(m).ok().flatten().as_ref() == Some(subject))
            .collect();
        with_subject.sort_by(|a, b| a.digest.cmp(&b.digest));
        for m in with_subject {
            found.push(FoundReferrer {
                tag: None,
                digest: Some(m.digest.clone()),
                kind: crate::oci::ReferrerEntry::of(m)?.kind(),
                names_subject: true,
            });
        }
        for (suffix, kind) in crate::oci::COSIGN_SUFFIXES {
            let tag = crate::oci::cosign_tag(subject, suffix);
            if self.tags.contains_key(&format!("{}:{tag}", origin.name())) {
                found.push(FoundReferrer {
                    tag: Some(tag),
                    digest: None,
                    kind,
                    names_subject: false,
                });
            }
        }
        Ok(found)
    }

    fn repository_on(&self, job: &ImageJob, registry: &str) -> Option<String> {
        (job.source.domain() == registry).then(|| job.source.path().to_string())
    }
}

/// A registry in memory that can refuse every mount.
#[derive(Default)]
struct MemoryDestination {
    refuses_mounts: bool,
    blobs: Mutex<HashMap<(String, Digest), Bytes>>,
    manifests: Mutex<HashMap<(String, ManifestSelector), Manifest>>,
    manifest_puts: Mutex<Vec<(String, ManifestSelector)>>,
    uploads: Mutex<Vec<(String, Digest)>>,
    /// Commits whose bytes did not match their digest (refused, as a registry does).
    bad_commits: Mutex<Vec<(String, Digest)>>,
    /// Uploads into this repository break.
    broken_repository: Option<String>,
    /// Answers a manifest push with the digest stored, as registries do.
    confirms_puts: bool,
    /// Stores manifests by digest only, whatever the push asked.
    forgets_tags: bool,
    /// How often `manifest_digest` was asked.
    manifest_heads: Mutex<usize>,
    /// Keeps referrers lists itself (the OCI 1.1 referrers API).
    lists_referrers: bool,
}

impl Destination for MemoryDestination {
    type Upload = Vec<u8>;

    fn name(&self) -> &str {
        "memory"
    }

    fn registry_domain(&self) -> Option<&str> {
        Some("memory.test")
    }

    async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, CopyError> {
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .contains_key(&(repository.to_string(), digest.clone())))
    }

    async fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<Mount<Vec<u8>>, CopyError> {
        let mut blobs = self.blobs.lock().unwrap();
        match blobs.get(&(from.to_string(), digest.clone())).cloned() {
            Some(b) if !self.refuses_mounts => {
                blobs.insert((repository.to_string(), digest.clone()), b);
                Ok(Mount::Mounted)
            }
            _ => Ok(Mount::Refused(Some(Vec::new()))),
        }
    }

    async fn start_upload(&self, _repository: &str) -> Result<Vec<u8>, CopyError> {
        Ok(Vec::new())
    }

    async fn write_blob(
        &self,
        repository: &str,
        mut upload: Vec<u8>,
        mut body: BlobBody,
        _size: u64,
    ) -> Result<Vec<u8>, CopyError> {
        if self.broken_repository.as_deref() == Some(repository) {
            return Err(missing("a broken upload"));
        }
        while let Some(chunk) = body.next().await {
            upload.extend_from_slice(&chunk.map_err(missing)?);
        }
        Ok(upload)
    }

    async fn commit_blob(&self, repository: &str, upload: Vec<u8>, digest: &Digest) -> Result<(), CopyError> {
        if &Digest::sha256_of(&upload) != digest {
            self.bad_commits
                .lock()
                .unwrap()
                .push((repository.to_string(), digest.clone()));
            return Err(missing("a digest mismatch at commit"));
        }
        self.uploads
            .lock()
            .unwrap()
            .push((repository.to_string(), digest.clone()));
        self.blobs
            .lock()
            .unwrap()
            .insert((repository.to_string(), digest.clone()), Bytes::from(upload));
        Ok(())
    }

    async fn abort_blob(&self, _repository: &str, _upload: Vec<u8>) {}

    async fn manifest_digest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> Result<Option<Digest>, CopyError> {
        *self.manifest_heads.lock().unwrap() += 1;
        let manifests = self.manifests.lock().unwrap();
        Ok(manifests
            .get(&(repository.to_string(), selector.clone()))
            .map(|m| m.digest.clone()))
    }

    async fn put_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> Result<Option<Digest>, CopyError> {
        // a real registry refuses a manifest whose blobs or children it lacks
        for b in ImageTree::build(ManifestOutline::of(manifest)?, |d| {
            let found = self
                .manifests
                .lock()
                .unwrap()
                .get(&(repository.to_string(), ManifestSelector::Digest(d.digest.clone())))
                .map(ManifestOutline::of)
                .ok_or_else(|| missing(format!("child {}", d.digest)));
            async move { Ok::<_, CopyError>(found??) }
        })
        .await?
        .blobs
        .iter()
        .filter(|_| !manifest.is_index())
        {
            assert!(
                self.has_blob(repository, &b.digest).await?,
                "blob {} pushed before the manifest",
                b.digest
            );
        }
        let key = (repository.to_string(), selector.clone());
        self.manifest_puts.lock().unwrap().push(key.clone());
        let mut manifests = self.manifests.lock().unwrap();
        manifests.insert(key, manifest.clone());
        manifests.insert(
            (
                repository.to_string(),
                ManifestSelector::Digest(manifest.digest.clone()),
            ),
            manifest.clone(),
        );
        if self.forgets_tags {
            manifests.retain(|(_, s), _| matches!(s, ManifestSelector::Digest(_)));
        }
        Ok(self.confirms_puts.then(|| manifest.digest.clone()))
    }

    async fn find_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> Result<Option<Manifest>, CopyError> {
        let manifests = self.manifests.lock().unwrap();
        Ok(manifests.get(&(repository.to_string(), selector.clone())).cloned())
    }

    async fn lists_referrers(&self, _repository: &str, _subject: &Digest) -> Result<bool, CopyError> {
        Ok(self.lists_referrers)
    }

    async fn read_tree(&self, _repository: &str, _selector: &ManifestSelector) -> Result<ImageTree, CopyError> {
        Err(missing("read_tree"))
    }
}

fn job(source: &str, destination: &str) -> ImageJob {
    let source = Reference::parse_normalized(source).unwrap();
    ImageJob {
        label: source.to_string(),
        pinned: source.digest().cloned(),
        destination: Reference::parse_normalized(destination)
            .unwrap()
            .with_tag_and_digest(source.tag(), source.digest()),
        source,
    }
}

async fn copy(source: &MemorySource, destination: &Arc<MemoryDestination>, jobs: &[ImageJob]) -> CopyReport {
    let reporter: Reporter = Arc::new(|_: &Event| {});
    copy_images(source, destination.clone(), jobs, &CopyOptions::default(), &reporter).await
}

#[tokio::test]
async fn each_manifest_and_blob_is_placed_once_per_repository() {
    let mut src = MemorySource::default();
    let amd = src.image("cfg-amd", &["base", "amd"]);
    let arm = src.image("cfg-arm", &["base", "arm"]);
    let other = src.image("cfg-other", &["base"]);
    let multi = src.index(&[&amd, &arm]);
    let multi2 = src.index(&[&amd, &other]);
    src.tag("src.example/multi:1", &multi);
    src.tag("src.example/multi:2", &multi2);
    let jobs = [
        job("src.example/multi:1", "memory/app"),
        job(&format!("src.example/multi@{}", multi.digest), "memory/app"),
        job("src.example/multi:2", "memory/app"),
        job("src.example/multi:1", "memory/elsewhere"),
    ];
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &jobs).await;
    assert!(
        report.succeeded(),
        "{:?}",
        report.failures().map(|f| f.to_string()).collect::<Vec<_>>()
    );
    let puts = dst.manifest_puts.lock().unwrap().clone();
    let child = |m: &Manifest| ("memory/app".to_string(), ManifestSelector::Digest(m.digest.clone()));
    assert_eq!(
        puts.iter().filter(|p| **p == child(&amd)).count(),
        1,
        "a shared child once: {puts:?}"
    );
    assert_eq!(puts.iter().filter(|p| **p == child(&multi)).count(), 1);
    let uploads = dst.uploads.lock().unwrap().clone();
    let base = Digest::sha256_of(b"base");
    assert_eq!(
        uploads.iter().filter(|(_, d)| *d == base).count(),
        1,
        "mounted elsewhere: {uploads:?}"
    );
    assert_eq!(src.reads_of(&base), 1);
}

#[tokio::test]
async fn a_blob_for_many_repositories_that_refuse_mounts_is_read_twice() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["base"]);
    src.tag("src.example/app:1", &image);
    let jobs: Vec<ImageJob> = (0..6)
        .map(|i| job("src.example/app:1", &format!("memory/r{i}")))
        .collect();
    let dst = Arc::new(MemoryDestination {
        refuses_mounts: true,
        ..Default::default()
    });
    let report = copy(&src, &dst, &jobs).await;
    assert!(report.succeeded());
    let base = Digest::sha256_of(b"base");
    assert_eq!(
        src.reads_of(&base),
        2,
        "once for the first repository, once for all others"
    );
    assert_eq!(
        dst.uploads.lock().unwrap().iter().filter(|(_, d)| *d == base).count(),
        6
    );
}

#[tokio::test]
async fn two_images_claiming_one_tag_push_nothing() {
    let mut src = MemorySource::default();
    let a = src.image("cfg-a", &["a"]);
    let b = src.image("cfg-b", &["b"]);
    src.tag("src.example/app:1", &a);
    let jobs = [
        job("src.example/app:1", "memory/app"),
        job(&format!("src.example/app:1@{}", b.digest), "memory/app"),
    ];
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &jobs).await;
    assert!(report.images.iter().all(|i| i.outcome.is_err()));
    assert!(
        report.images[0].to_string().contains("claim the same tag"),
        "{}",
        report.images[0]
    );
    assert!(dst.uploads.lock().unwrap().is_empty() && dst.manifest_puts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_blob_longer_than_its_descriptor_fails_at_once_and_is_not_read_again() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["base"]);
    src.tag("src.example/app:1", &image);
    let base = Digest::sha256_of(b"base");
    src.served_instead
        .insert(base.clone(), Bytes::from_static(b"base and more"));
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    let failure = report.images[0].to_string();
    assert!(
        failure.contains("more than the descriptor") && failure.contains("not committed"),
        "{failure}"
    );
    assert_eq!(src.reads_of(&base), 1, "not retried");
}

#[tokio::test]
async fn corrupt_bytes_teed_to_several_repositories_are_committed_nowhere() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["base"]);
    src.tag("src.example/app:1", &image);
    let base = Digest::sha256_of(b"base");
    // the first read (for one repository) is sound; the second, teed to the others, is not
    src.served_later.insert(base.clone(), Bytes::from_static(b"BASE"));
    let dst = Arc::new(MemoryDestination {
        refuses_mounts: true,
        broken_repository: Some("memory/r1".into()),
        ..Default::default()
    });
    let jobs: Vec<ImageJob> = (0..4)
        .map(|i| job("src.example/app:1", &format!("memory/r{i}")))
        .collect();
    let report = copy(&src, &dst, &jobs).await;
    assert!(!report.succeeded());
    assert_eq!(src.reads_of(&base), 2);
    assert!(
        dst.bad_commits.lock().unwrap().is_empty(),
        "mismatching bytes are never committed"
    );
    let uploads = dst.uploads.lock().unwrap().clone();
    assert_eq!(
        uploads.iter().filter(|(_, d)| *d == base).count(),
        1,
        "only the sound first upload: {uploads:?}"
    );
}

#[tokio::test]
async fn a_refused_mount_from_the_source_repository_still_mounts_from_the_first_upload() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["base"]);
    // the source is on the destination's registry, but its repository cannot lend the blob
    src.tag("memory.test/src/app:1", &image);
    let jobs: Vec<ImageJob> = (0..4)
        .map(|i| job("memory.test/src/app:1", &format!("memory.test/r{i}")))
        .collect();
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &jobs).await;
    assert!(report.succeeded());
    let base = Digest::sha256_of(b"base");
    assert_eq!(src.reads_of(&base), 1);
    assert_eq!(
        dst.uploads.lock().unwrap().iter().filter(|(_, d)| *d == base).count(),
        1,
        "uploaded once, mounted into the other three"
    );
}

#[tokio::test]
async fn content_under_another_digest_algorithm_is_refused_before_any_push() {
    use sha2::Digest as _;
    let mut src = MemorySource::default();
    let layer = b"layer";
    let sha512: Digest = format!("sha512:{}", crate::reference::hex_string(&sha2::Sha512::digest(layer)))
        .parse()
        .unwrap();
    src.blobs.insert(sha512.clone(), Bytes::from_static(layer));
    let (config, size) = src.blob("cfg");
    let manifest = src.manifest(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{sha512}","size":5}}]}}"#
    ));
    src.tag("src.example/app:1", &manifest);
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    let failure = report.images[0].to_string();
    assert!(failure.contains("not a sha256 digest"), "{failure}");
    assert!(dst.uploads.lock().unwrap().is_empty() && dst.manifest_puts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn manifests_are_read_again_in_batches_within_the_budget() {
    let mut src = MemorySource::default();
    let mut jobs = Vec::new();
    let mut sizes = 0;
    for i in 0..6 {
        let amd = src.image(&format!("cfg-amd-{i}"), &["base"]);
        let arm = src.image(&format!("cfg-arm-{i}"), &["base"]);
        let multi = src.index(&[&amd, &arm]);
        sizes = amd.bytes.len() + arm.bytes.len() + multi.bytes.len();
        src.tag(&format!("src.example/app:{i}"), &multi);
        jobs.push(job(&format!("src.example/app:{i}"), "memory/app"));
    }
    let dst = Arc::new(MemoryDestination::default());
    let reporter: Reporter = Arc::new(|_: &Event| {});
    let options = CopyOptions {
        manifest_batch_budget: 2 * sizes + 10,
        ..CopyOptions::default()
    };
    let report = copy_images(&src, dst.clone(), &jobs, &options, &reporter).await;
    assert!(report.succeeded());
    assert_eq!(
        *src.manifest_reads.lock().unwrap(),
        [6, 6, 6],
        "two images' three manifests per read"
    );
    assert_eq!(
        dst.manifest_puts.lock().unwrap().len(),
        18,
        "every manifest pushed once"
    );
}

#[tokio::test]
async fn a_push_is_verified_by_the_destinations_answer_else_by_asking() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["layer"]);
    src.tag("src.example/app:1", &image);
    let jobs = [job("src.example/app:1", "memory/app")];

    let confirming = Arc::new(MemoryDestination {
        confirms_puts: true,
        ..Default::default()
    });
    assert!(copy(&src, &confirming, &jobs).await.succeeded());
    assert_eq!(
        *confirming.manifest_heads.lock().unwrap(),
        1,
        "asked only before the push"
    );

    let silent = Arc::new(MemoryDestination::default());
    assert!(copy(&src, &silent, &jobs).await.succeeded());
    assert_eq!(*silent.manifest_heads.lock().unwrap(), 2, "asked again after the push");

    let forgetful = Arc::new(MemoryDestination {
        forgets_tags: true,
        ..Default::default()
    });
    let report = copy(&src, &forgetful, &jobs).await;
    let failures: Vec<String> = report.failures().map(|f| f.to_string()).collect();
    assert!(
        failures.len() == 1 && failures[0].contains("after the push the target answers nothing"),
        "{failures:?}"
    );
}

/// A source with an image, its cosign signature, an SBOM naming it as subject, and a
/// signature on the SBOM.
fn signed_image() -> (MemorySource, Manifest, Manifest, Manifest, Manifest) {
    let mut src = MemorySource::default();
    let image = src.image("cfg-app", &["app"]);
    src.tag("src.example/app:1", &image);
    let sig = src.image("cfg-sig", &["signature-of-app"]);
    src.tag(
        &format!("src.example/app:{}", crate::oci::cosign_tag(&image.digest, "sig")),
        &sig,
    );
    let sbom = referrer(&mut src, "application/spdx+json", &image, "sbom-of-app");
    let sbom_sig = src.image("cfg-sig2", &["signature-of-sbom"]);
    src.tag(
        &format!("src.example/app:{}", crate::oci::cosign_tag(&sbom.digest, "sig")),
        &sbom_sig,
    );
    (src, image, sig, sbom, sbom_sig)
}

fn referrer(src: &mut MemorySource, artifact_type: &str, subject: &Manifest, content: &str) -> Manifest {
    let (layer, size) = src.blob(content);
    let (empty, _) = src.blob("{}");
    src.manifest(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"{artifact_type}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"{artifact_type}","digest":"{layer}","size":{size}}}],"subject":{{"mediaType":"{}","digest":"{}","size":{}}},"annotations":{{"org.example":"{content}"}}}}"#,
        subject.media_type,
        subject.digest,
        subject.bytes.len()
    ))
}

fn fallback_entries(dst: &MemoryDestination, repository: &str, subject: &Digest) -> Vec<Digest> {
    let tag = ManifestSelector::Tag(crate::oci::fallback_tag(subject));
    let manifests = dst.manifests.lock().unwrap();
    match manifests.get(&(repository.to_string(), tag)) {
        Some(index) => crate::oci::referrers_in(index)
            .unwrap()
            .into_iter()
            .map(|e| e.digest)
            .collect(),
        None => Vec::new(),
    }
}

#[tokio::test]
async fn signatures_and_sboms_travel_with_their_image_level_by_level() {
    let (src, image, sig, sbom, sbom_sig) = signed_image();
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    assert!(report.succeeded(), "{:?}", report.images);
    let held = |selector: ManifestSelector| {
        dst.manifests
            .lock()
            .unwrap()
            .get(&("memory/app".to_string(), selector))
            .map(|m| m.digest.clone())
    };
    let tag = |d: &Digest| ManifestSelector::Tag(crate::oci::cosign_tag(d, "sig"));
    assert_eq!(
        held(tag(&image.digest)),
        Some(sig.digest.clone()),
        "the image's signature, as a tag"
    );
    assert_eq!(
        held(tag(&sbom.digest)),
        Some(sbom_sig.digest.clone()),
        "the SBOM's signature"
    );
    assert_eq!(
        held(ManifestSelector::Digest(sbom.digest.clone())),
        Some(sbom.digest.clone())
    );
    assert_eq!(
        fallback_entries(&dst, "memory/app", &image.digest),
        vec![sbom.digest.clone()]
    );
    let copied = report.images[0].outcome.as_ref().unwrap();
    let mut kinds: Vec<(&str, &Digest)> = copied.referrers.iter().map(|r| (r.kind.as_str(), &r.digest)).collect();
    kinds.sort();
    assert_eq!(kinds, {
        let mut want = vec![
            ("sbom", &sbom.digest),
            ("signature", &sig.digest),
            ("signature", &sbom_sig.digest),
        ];
        want.sort();
        want
    });
    assert_eq!(report.images.len(), 1, "referrers are not bundle images");
}

#[tokio::test]
async fn without_referrers_only_the_image_is_copied() {
    let (src, image, ..) = signed_image();
    let dst = Arc::new(MemoryDestination::default());
    let reporter: Reporter = Arc::new(|_: &Event| {});
    let options = CopyOptions {
        referrers: false,
        ..CopyOptions::default()
    };
    let report = copy_images(
        &src,
        dst.clone(),
        &[job("src.example/app:1", "memory/app")],
        &options,
        &reporter,
    )
    .await;
    assert!(report.succeeded());
    let puts = dst.manifest_puts.lock().unwrap().clone();
    assert_eq!(
        puts,
        vec![("memory/app".to_string(), ManifestSelector::Tag("1".into()))]
    );
    assert!(fallback_entries(&dst, "memory/app", &image.digest).is_empty());
}

#[tokio::test]
async fn a_destination_with_the_referrers_api_gets_no_fallback_tag() {
    let (src, image, _, sbom, _) = signed_image();
    let dst = Arc::new(MemoryDestination {
        lists_referrers: true,
        ..MemoryDestination::default()
    });
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    assert!(report.succeeded());
    assert!(dst
        .manifests
        .lock()
        .unwrap()
        .contains_key(&("memory/app".to_string(), ManifestSelector::Digest(sbom.digest.clone()))));
    assert!(fallback_entries(&dst, "memory/app", &image.digest).is_empty());
}

#[tokio::test]
async fn a_fallback_index_is_merged_and_a_rerun_adds_only_what_is_new() {
    let (mut src, image, _, sbom, _) = signed_image();
    let dst = Arc::new(MemoryDestination::default());
    // an unrelated referrer the destination lists already
    let mut elsewhere = MemorySource::default();
    let unrelated = referrer(&mut elsewhere, "application/vnd.example+json", &image, "unrelated");
    let unrelated_entry = crate::oci::ReferrerEntry::of(&unrelated).unwrap();
    let existing = crate::oci::merged_fallback_index(None, &[unrelated_entry])
        .unwrap()
        .unwrap();
    let tag = ManifestSelector::Tag(crate::oci::fallback_tag(&image.digest));
    {
        let mut held = dst.manifests.lock().unwrap();
        held.insert(("memory/app".to_string(), tag), existing);
        held.insert(
            (
                "memory/app".to_string(),
                ManifestSelector::Digest(unrelated.digest.clone()),
            ),
            unrelated.clone(),
        );
    }

    let pinned = format!("src.example/app:1@{}", image.digest);
    let report = copy(&src, &dst, &[job(&pinned, "memory/app")]).await;
    assert!(report.succeeded(), "{:?}", report.images);
    assert_eq!(
        fallback_entries(&dst, "memory/app", &image.digest),
        vec![unrelated.digest.clone(), sbom.digest.clone()]
    );

    // a new attestation at the source: the re-run copies it though the image is present
    let att = referrer(&mut src, "application/vnd.in-toto+json", &image, "provenance");
    let report = copy(&src, &dst, &[job(&pinned, "memory/app")]).await;
    assert!(report.succeeded(), "{:?}", report.images);
    let copied = report.images[0].outcome.as_ref().unwrap();
    assert!(copied.already_present);
    let new: Vec<&Digest> = copied
        .referrers
        .iter()
        .filter(|r| !r.already_present)
        .map(|r| &r.digest)
        .collect();
    assert_eq!(new, vec![&att.digest]);
    assert_eq!(
        fallback_entries(&dst, "memory/app", &image.digest),
        vec![unrelated.digest.clone(), sbom.digest.clone(), att.digest.clone()],
        "merged again, nothing twice"
    );
}

#[tokio::test]
async fn an_image_whose_referrers_cannot_be_listed_fails_and_nothing_is_pushed() {
    let (mut src, ..) = signed_image();
    src.referrers_fail = true;
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    assert!(!report.succeeded());
    let error = report.images[0].outcome.as_ref().unwrap_err().to_string();
    assert!(error.contains("finding what refers to"), "{error}");
    assert!(dst.manifest_puts.lock().unwrap().is_empty(), "nothing pushed");
    assert!(dst.uploads.lock().unwrap().is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_listed_referrer_that_is_gone_is_skipped() {
    let (mut src, image, _, sbom, _) = signed_image();
    src.gone_referrers = vec![format!("sha256:{}", "9".repeat(64)).parse().unwrap()];
    let dst = Arc::new(MemoryDestination::default());
    let report = copy(&src, &dst, &[job("src.example/app:1", "memory/app")]).await;
    assert!(report.succeeded(), "{:?}", report.images);
    assert_eq!(
        fallback_entries(&dst, "memory/app", &image.digest),
        vec![sbom.digest.clone()]
    );
}

#[tokio::test]
async fn without_all_or_nothing_an_image_that_fails_does_not_stop_the_others() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["layer"]);
    src.tag("src.example/app:1", &image);
    let jobs = [
        job("src.example/gone:1", "memory/gone"),
        job("src.example/app:1", "memory/app"),
    ];
    let reporter: Reporter = Arc::new(|_: &Event| {});
    let dst = Arc::new(MemoryDestination::default());
    let together = copy_images(&src, dst.clone(), &jobs, &CopyOptions::default(), &reporter).await;
    assert!(
        together.images.iter().all(|i| i.outcome.is_err()),
        "a bundle goes whole"
    );
    assert!(dst.uploads.lock().unwrap().is_empty());

    let options = CopyOptions {
        all_or_nothing: false,
        ..CopyOptions::default()
    };
    let alone = copy_images(&src, dst.clone(), &jobs, &options, &reporter).await;
    assert!(alone.images[0].outcome.is_err());
    assert!(alone.images[1].outcome.is_ok(), "{}", alone.images[1]);
    assert!(dst
        .manifests
        .lock()
        .unwrap()
        .contains_key(&("memory/app".to_string(), ManifestSelector::Tag("1".into()))));
}

#[tokio::test]
async fn a_ledger_lets_a_later_copy_mount_what_an_earlier_one_placed() {
    let mut src = MemorySource::default();
    let first = src.image("cfg-1", &["base"]);
    let second = src.image("cfg-2", &["base"]);
    src.tag("src.example/one:1", &first);
    src.tag("src.example/two:1", &second);
    let reporter: Reporter = Arc::new(|_: &Event| {});
    let base = Digest::sha256_of(b"base");
    let uploads_of_base = |dst: &MemoryDestination| {
        let uploads = dst.uploads.lock().unwrap();
        uploads.iter().filter(|(_, d)| *d == base).count()
    };
    for (ledger, uploads) in [(None, 2), (Some(Arc::new(BlobLedger::new())), 1)] {
        let dst = Arc::new(MemoryDestination::default());
        let options = CopyOptions {
            ledger,
            ..CopyOptions::default()
        };
        for (source, target) in [("src.example/one:1", "memory/one"), ("src.example/two:1", "memory/two")] {
            let report = copy_images(&src, dst.clone(), &[job(source, target)], &options, &reporter).await;
            assert!(report.succeeded());
        }
        assert_eq!(uploads_of_base(&dst), uploads, "ledger: {}", options.ledger.is_some());
        assert!(dst
            .blobs
            .lock()
            .unwrap()
            .contains_key(&("memory/two".to_string(), base.clone())));
    }
}

#[tokio::test]
async fn manifest_lookups_are_not_held_to_the_transfer_concurrency() {
    let mut src = MemorySource::default();
    let image = src.image("cfg", &["layer"]);
    let jobs: Vec<ImageJob> = (0..20)
        .map(|i| {
            src.tag(&format!("src.example/app{i}:1"), &image);
            job(&format!("src.example/app{i}:1"), &format!("memory/app{i}"))
        })
        .collect();
    let options = CopyOptions {
        concurrency: 1,
        ..CopyOptions::default()
    };
    let reporter: Reporter = Arc::new(|_: &Event| {});
    let dst = Arc::new(MemoryDestination::default());
    assert!(copy_images(&src, dst, &jobs, &options, &reporter).await.succeeded());
    let most = src.resolving.lock().unwrap().1;
    assert!(most >= 20, "every image's lookup under way together: {most}");
}

#[tokio::test]
async fn one_image_under_two_tags_reports_its_referrers_under_both() {
    let (mut src, image, sig, sbom, sbom_sig) = signed_image();
    src.tag("src.example/app:latest", &image);
    let events = Arc::new(Mutex::new(Vec::new()));
    let reporter: Reporter = {
        let events = events.clone();
        Arc::new(move |e: &Event| {
            if let Event::ReferrerCopied { image, digest, .. } = e {
                events.lock().unwrap().push((image.clone(), digest.clone()));
            }
        })
    };
    let jobs = [
        job("src.example/app:1", "memory/app"),
        job("src.example/app:latest", "memory/app"),
    ];
    let dst = Arc::new(MemoryDestination::default());
    let report = copy_images(&src, dst, &jobs, &CopyOptions::default(), &reporter).await;
    assert!(report.succeeded(), "{:?}", report.images);
    let all = [&sig, &sbom, &sbom_sig].map(|m| m.digest.to_string());
    for result in &report.images {
        let copied = result.outcome.as_ref().unwrap();
        let mut listed: Vec<String> = copied.referrers.iter().map(|r| r.digest.to_string()).collect();
        listed.sort();
        let mut want = all.to_vec();
        want.sort();
        assert_eq!(listed, want, "{}", result.image);
        for d in &all {
            assert!(
                events.lock().unwrap().contains(&(result.image.clone(), d.clone())),
                "{} {d}",
                result.image
            );
        }
    }
    assert_eq!(report.images[0].outcome.as_ref().unwrap().digest, image.digest);
}
