//! What a registry lists, page by page (`Link`): its repositories (the catalog), a
//! repository's tags, and the referrers of a manifest (OCI 1.1 API).

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
/// Tag list bytes read in all for one repository (about a million tags); the same bound
/// holds for a catalog.
const MAX_TAGS_BYTES: usize = 64 * 1024 * 1024;
/// Referrers listed for one manifest at most: past that, the listing is refused rather
/// than held (nothing a server sends may grow memory without bound).
pub const MAX_REFERRERS: usize = 10_000;
/// Pages of one listing followed at most.
const MAX_PAGES: usize = 10_000;

/// One listing to walk page by page.
struct Listing<'a> {
    /// How messages name it.
    op: String,
    /// What the token must allow.
    scopes: Vec<String>,
    /// The first page's path.
    first: String,
    /// The `Accept` header to send, if any.
    accept: Option<&'a str>,
    /// Largest page read.
    max_page: usize,
    /// Statuses that, for the first page, mean "nothing to list" rather than an error.
    absent: &'a [StatusCode],
}

/// A page of a tag list.
#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// A page of a catalog.
#[derive(Deserialize)]
struct Repositories {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// How a page of names is read.
type ReadNames = fn(&[u8]) -> serde_json::Result<Option<Vec<String>>>;

fn tag_page(body: &[u8]) -> serde_json::Result<Option<Vec<String>>> {
    serde_json::from_slice::<Tags>(body).map(|p| p.tags)
}

fn catalog_page(body: &[u8]) -> serde_json::Result<Option<Vec<String>>> {
    serde_json::from_slice::<Repositories>(body).map(|p| p.repositories)
}

impl Registry {
    /// Every repository of the registry (`GET /v2/_catalog`, scope `registry:catalog:*`),
    /// following `Link` pages until there is none: the registry chooses the page size (100
    /// for distribution), and a short page does not end the listing.
    pub async fn list_catalog(&self) -> Result<Vec<String>, RegistryError> {
        let listing = Listing {
            op: "GET catalog".to_string(),
            scopes: vec!["registry:catalog:*".to_string()],
            first: "v2/_catalog".to_string(),
            accept: None,
            max_page: MAX_TAGS_PAGE,
            absent: &[],
        };
        Ok(self.list_names(&listing, catalog_page).await?.unwrap_or_default())
    }

    /// Every tag of the repository, following `Link: <…>; rel="next"` pages until there is
    /// none (a short page does not end the listing). A repository that does not exist has none.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.existing_tags(repository).await?.unwrap_or_default())
    }

    /// [`list_tags`](Self::list_tags), but `None` when the repository does not exist (404).
    pub async fn existing_tags(&self, repository: &str) -> Result<Option<Vec<String>>, RegistryError> {
        let listing = Listing {
            op: format!("GET tags of {repository}"),
            scopes: vec![repository_scope(repository, false)],
            first: format!("v2/{repository}/tags/list?n={TAGS_PER_PAGE}"),
            accept: None,
            max_page: MAX_TAGS_PAGE,
            absent: &[StatusCode::NOT_FOUND],
        };
        self.list_names(&listing, tag_page).await
    }

    /// Every name of every page; `None` when the first page's status says there is none.
    async fn list_names(&self, listing: &Listing<'_>, read: ReadNames) -> Result<Option<Vec<String>>, RegistryError> {
        let mut names = Vec::new();
        let mut bytes = 0;
        let found = self
            .walk(listing, |op, body| {
                bytes += body.len();
                if bytes > MAX_TAGS_BYTES {
                    return Err(self.protocol(format!("{op}: more than {MAX_TAGS_BYTES} bytes of names")));
                }
                let page = read(body).map_err(|e| self.protocol(format!("{op}: not a list of names: {e}")))?;
                names.extend(page.unwrap_or_default());
                Ok(())
            })
            .await?;
        Ok(found.then_some(names))
    }

    /// The referrers of `subject` by the OCI 1.1 referrers API, every page of its answer
    /// followed; `None` when the registry has no such API (it answers 404, 405 or 501: a
    /// registry with the API never answers 404 here, as the distribution spec says).
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<ReferrerEntry>>, RegistryError> {
        let listing = Listing {
            op: format!("GET referrers of {repository}@{subject}"),
            scopes: vec![repository_scope(repository, false)],
            first: format!("v2/{repository}/referrers/{subject}"),
            accept: Some(OCI_INDEX),
            max_page: MAX_MANIFEST_SIZE,
            absent: &[
                StatusCode::NOT_FOUND,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::NOT_IMPLEMENTED,
            ],
        };
        let mut entries = Vec::new();
        let found = self
            .walk(&listing, |op, body| {
                let index =
                    Manifest::new(body.clone(), Some(OCI_INDEX), None).map_err(|e| self.manifest_error(op, e))?;
                entries.extend(referrers_in(&index).map_err(|e| self.manifest_error(op, e))?);
                if entries.len() > MAX_REFERRERS {
                    return Err(self.protocol(format!("{op}: more than {MAX_REFERRERS} referrers")));
                }
                Ok(())
            })
            .await?;
        Ok(found.then_some(entries))
    }

    /// Reads every page of `listing`, handing each body to `page`; `false` when the first
    /// page's status says there is nothing to list. Pages are bounded in size and number, and a
    /// link back to a page already read is an error, so a registry cannot page forever.
    async fn walk(
        &self,
        listing: &Listing<'_>,
        mut page: impl FnMut(&str, &bytes::Bytes) -> Result<(), RegistryError>,
    ) -> Result<bool, RegistryError> {
        let op = &listing.op;
        let scopes = &listing.scopes;
        let mut next = listing.first.clone();
        let mut visited = std::collections::HashSet::new();
        loop {
            if visited.len() >= MAX_PAGES {
                return Err(self.protocol(format!("{op}: more than {MAX_PAGES} pages")));
            }
            if !visited.insert(next.clone()) {
                return Err(self.protocol(format!("{op}: the next page links back to {next}")));
            }
            let path = next.clone();
            let response = self
                .send(op, scopes, |http, base| {
                    let request = http.get(base.join(&path).expect("valid path"));
                    match listing.accept {
                        Some(accept) => request.header(ACCEPT, accept),
                        None => request,
                    }
                })
                .await?;
            if visited.len() == 1 && listing.absent.contains(&response.status()) {
                return Ok(false);
            }
            let response = self.expect_success(op, response, &[StatusCode::OK]).await?;
            let link = header_str(response.headers(), LINK).and_then(|l| next_link(&l));
            let answered = response.url().clone();
            let body = read_at_most(response, listing.max_page)
                .await
                .map_err(|e| self.transport(op, &e))?
                .ok_or_else(|| self.protocol(format!("{op}: a page larger than {} bytes", listing.max_page)))?;
            page(op, &body)?;
            match link {
                Some(link) => next = self.same_origin_path(op, &answered, &link)?,
                None => return Ok(true),
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
