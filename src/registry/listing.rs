//! What a repository lists, page by page (`Link`): its tags, and the referrers of a manifest
//! (OCI 1.1 API).

use reqwest::header::{ACCEPT, LINK};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::auth::repository_scope;
use super::client::Registry;
use super::error::RegistryError;
use super::response::{header_str, read_at_most};
use crate::limits::MAX_MANIFEST_SIZE;
use crate::oci::{referrers_in, Manifest, ManifestError, ReferrerEntry, OCI_INDEX};
use crate::reference::Digest;

/// Tags asked for per page; registries may send fewer and page on.
const TAGS_PER_PAGE: usize = 1000;
/// Largest tag list page read.
const MAX_TAGS_PAGE: usize = 8 * 1024 * 1024;
/// Tag list bytes read in all for one repository (about a million tags).
const MAX_TAGS_BYTES: usize = 64 * 1024 * 1024;
/// Referrers listed for one manifest at most: past that, the listing is refused rather
/// than held (nothing a server sends may grow memory without bound).
pub const MAX_REFERRERS: usize = 10_000;
/// Pages of one listing followed at most.
const MAX_PAGES: usize = 10_000;

impl Registry {
    /// Every tag of the repository, following `Link: <…>; rel="next"` pages until there is
    /// none (a short page does not end the listing). A repository that does not exist has none.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let op = format!("GET tags of {repository}");
        let scopes = [repository_scope(repository, false)];
        let mut next = format!("v2/{repository}/tags/list?n={TAGS_PER_PAGE}");
        let mut tags = Vec::new();
        let mut pages = Pages::default();
        loop {
            pages
                .visit(&next)
                .map_err(|why| self.protocol(format!("{op}: {why}")))?;
            let path = next.clone();
            let response = self
                .send(&op, &scopes, |http, base| {
                    http.get(base.join(&path).expect("valid path"))
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND && tags.is_empty() {
                return Ok(tags);
            }
            let response = self.expect_success(&op, response, &[StatusCode::OK]).await?;
            let link = header_str(response.headers(), LINK).and_then(|l| next_link(&l));
            let answered = response.url().clone();
            let body = read_at_most(response, MAX_TAGS_PAGE)
                .await
                .map_err(|e| self.transport(&op, &e))?
                .ok_or_else(|| self.protocol(format!("{op}: a page larger than {MAX_TAGS_PAGE} bytes")))?;
            pages.bytes += body.len();
            if pages.bytes > MAX_TAGS_BYTES {
                return Err(self.protocol(format!("{op}: more than {MAX_TAGS_BYTES} bytes of tags")));
            }
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| self.protocol(format!("{op}: not a tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(link) = link else {
                return Ok(tags);
            };
            next = self.same_origin_path(&op, &answered, &link)?;
        }
    }

    /// The referrers of `subject` by the OCI 1.1 referrers API, every page of its answer
    /// followed; `None` when the registry has no such API (it answers 404, 405 or 501: a
    /// registry with the API never answers 404 here, as the distribution spec says).
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<ReferrerEntry>>, RegistryError> {
        let op = format!("GET referrers of {repository}@{subject}");
        let scopes = [repository_scope(repository, false)];
        let mut next = format!("v2/{repository}/referrers/{subject}");
        let mut entries = Vec::new();
        let mut pages = Pages::default();
        loop {
            let first = pages.visited.is_empty();
            pages
                .visit(&next)
                .map_err(|why| self.protocol(format!("{op}: {why}")))?;
            let path = next.clone();
            let response = self
                .send(&op, &scopes, |http, base| {
                    http.get(base.join(&path).expect("valid path"))
                        .header(ACCEPT, OCI_INDEX)
                })
                .await?;
            if first
                && matches!(
                    response.status(),
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
                )
            {
                return Ok(None);
            }
            let response = self.expect_success(&op, response, &[StatusCode::OK]).await?;
            let link = header_str(response.headers(), LINK).and_then(|l| next_link(&l));
            let answered = response.url().clone();
            let bytes = read_at_most(response, MAX_MANIFEST_SIZE)
                .await
                .map_err(|e| self.transport(&op, &e))?
                .ok_or_else(|| self.protocol(format!("{op}: an index larger than {MAX_MANIFEST_SIZE} bytes")))?;
            let index = Manifest::new(bytes, Some(OCI_INDEX), None).map_err(|e| self.manifest_error(&op, e))?;
            entries.extend(referrers_in(&index).map_err(|e| self.manifest_error(&op, e))?);
            if entries.len() > MAX_REFERRERS {
                return Err(self.protocol(format!("{op}: more than {MAX_REFERRERS} referrers")));
            }
            match link {
                Some(link) => next = self.same_origin_path(&op, &answered, &link)?,
                None => return Ok(Some(entries)),
            }
        }
    }

    fn manifest_error(&self, op: &str, e: ManifestError) -> RegistryError {
        RegistryError::Manifest {
            registry: self.domain().to_string(),
            operation: op.to_string(),
            source: Box::new(e),
        }
    }

    /// The path and query of a `Link` target, asked of the registry's own endpoint: a link to
    /// another host is refused rather than quietly read from this one.
    fn same_origin_path(&self, op: &str, answered: &Url, link: &str) -> Result<String, RegistryError> {
        let to = answered
            .join(link)
            .map_err(|e| self.protocol(format!("{op}: bad Link {link}: {e}")))?;
        if to.origin() != answered.origin() {
            return Err(self.protocol(format!("{op}: the next page is on another host ({link})")));
        }
        let path = to.path().trim_start_matches('/');
        Ok(match to.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        })
    }
}

/// The pages of one listing so far: a link back to one already read ends it as an error, so
/// a registry cannot page forever.
#[derive(Default)]
struct Pages {
    visited: std::collections::HashSet<String>,
    bytes: usize,
}

impl Pages {
    fn visit(&mut self, path: &str) -> Result<(), String> {
        if self.visited.len() >= MAX_PAGES {
            return Err(format!("more than {MAX_PAGES} pages"));
        }
        match self.visited.insert(path.to_string()) {
            true => Ok(()),
            false => Err(format!("the next page links back to {path}")),
        }
    }
}

/// The target of the `rel="next"` link of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next" && p.contains("rel="));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", </v2/a/tags/list?last=c>; rel=next"#).as_deref(),
            Some("/v2/a/tags/list?last=c")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list?last=c>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
