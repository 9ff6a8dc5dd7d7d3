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
/// Pages followed at most (a registry that pages forever is cut off).
const MAX_TAGS_PAGES: usize = 10_000;

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
        for _ in 0..MAX_TAGS_PAGES {
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
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| self.protocol(format!("{op}: not a tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(link) = link else {
                return Ok(tags);
            };
            next = self.same_origin_path(&op, &answered, &link)?;
        }
        Err(self.protocol(format!("{op}: more than {MAX_TAGS_PAGES} pages")))
    }

    /// The referrers of `subject` by the OCI 1.1 referrers API, every page of its answer
    /// followed; `None` when the registry has no such API (404).
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<ReferrerEntry>>, RegistryError> {
        let op = format!("GET referrers of {repository}@{subject}");
        let scopes = [repository_scope(repository, false)];
        let mut next = format!("v2/{repository}/referrers/{subject}");
        let mut entries = Vec::new();
        for page in 0..MAX_TAGS_PAGES {
            let path = next.clone();
            let response = self
                .send(&op, &scopes, |http, base| {
                    http.get(base.join(&path).expect("valid path"))
                        .header(ACCEPT, OCI_INDEX)
                })
                .await?;
            if page == 0
                && matches!(
                    response.status(),
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
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
            match link {
                Some(link) => next = self.same_origin_path(&op, &answered, &link)?,
                None => return Ok(Some(entries)),
            }
        }
        Err(self.protocol(format!("{op}: more than {MAX_TAGS_PAGES} pages")))
    }

    fn manifest_error(&self, op: &str, e: ManifestError) -> RegistryError {
        RegistryError::Manifest {
            registry: self.domain().to_string(),
            operation: op.to_string(),
            source: Box::new(e),
        }
    }

    /// The path and query of a `Link` target, which must stay on the host that answered, so a
    /// registry cannot send a listing (and its credentials) elsewhere.
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
