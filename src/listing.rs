//! Reading a list endpoint page by page: the first page alone, the rest concurrently once
//! the total is known (or one by one until a short page), with the guards a flaky or
//! hostile server needs: a page cap, a stop on a repeated page, no row twice, and a note
//! when the list changed while it was read.

use std::collections::HashSet;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{ApiRequest, Client, ResultInfo};
use crate::provider::ResponseShape;

/// Listings of more pages than this keep only their first page in the session's cache
/// (5,000 rows at 50 a page, about 4 MiB of JSON, an eighth of the cache): a listing that
/// large is rarely read whole again within the cache's TTL, and caching it would cost more
/// memory than the rows themselves while pushing out the small answers that are reused.
const LARGEST_CACHED_LISTING: u64 = 100;

/// One page as a scan receives it.
#[derive(Debug)]
pub struct Page {
    /// The call that returned it (path and query), for messages.
    pub endpoint: String,
    /// Its rows, none already seen in this listing.
    pub rows: Vec<Value>,
    /// Notes for the user (a repeated page, a list that changed while read, rows dropped as repeats).
    pub notes: Vec<String>,
    /// Served from the session's cache (no call made).
    pub cached: bool,
}

/// What one listing reads.
pub(crate) struct Lister {
    pub client: Arc<Client>,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub per_page: Option<u64>,
    /// Cursor paging with this `limit` instead of page numbers.
    pub cursor_limit: Option<u64>,
    pub shape: ResponseShape,
    pub concurrency: usize,
    /// Pages allowed by the configuration (`max_pages`).
    pub max_pages: u64,
    /// Pages enough for the statement's LIMIT.
    pub wanted_pages: u64,
    /// The id key of a row, to drop a row seen on an earlier page.
    pub id_key: Option<String>,
}

struct Fetched {
    endpoint: String,
    rows: Vec<Value>,
    info: Option<ResultInfo>,
    note: Option<String>,
    cached: bool,
}

impl Lister {
    /// The listing's pages, in order of arrival.
    pub fn pages(self) -> BoxStream<'static, Result<Page>> {
        let me = Arc::new(self);
        let id_key = me.id_key.clone();
        let first = me.clone().fetch(1, true);
        stream::once(first)
            .flat_map(move |first| match first {
                Err(e) => stream::iter([Err(e)]).boxed(),
                Ok(f) => match me.clone().rest(&f) {
                    Ok(rest) => stream::iter([Ok(f)]).chain(rest).boxed(),
                    Err(e) => stream::iter([Err(e)]).boxed(),
                },
            })
            .scan(Seen::new(id_key), |seen, f| {
                futures::future::ready(Some(f.map(|f| seen.page(f))))
            })
            .boxed()
    }

    async fn fetch(self: Arc<Self>, page: u64, keep: bool) -> Result<Fetched> {
        self.fetch_at(Some(page), None, keep).await
    }

    /// One page: by number (page-number paging) or after a cursor (cursor paging).
    async fn fetch_at(
        self: Arc<Self>,
        page: Option<u64>,
        cursor: Option<String>,
        keep: bool,
    ) -> Result<Fetched> {
        let mut req = ApiRequest::get(self.path.clone());
        req.query = self.query.clone();
        req.keep = keep;
        if let Some(l) = self.cursor_limit {
            req.query.push(("limit".into(), l.to_string()));
            req.query.extend(cursor.map(|c| ("cursor".to_string(), c)));
        } else if let (Some(p), Some(page)) = (self.per_page, page) {
            req.query.push(("page".into(), page.to_string()));
            req.query.push(("per_page".into(), p.to_string()));
        }
        let resp = self.client.call(&req).await?;
        let endpoint = req.display_path();
        let rows = rows_of(&resp.result, self.shape, &req.method, &endpoint)?;
        Ok(Fetched {
            endpoint,
            rows,
            info: resp.result_info,
            note: None,
            cached: resp.cached,
        })
    }

    /// The pages after the first: all at once when the total is known, else one by one.
    fn rest(self: Arc<Self>, first: &Fetched) -> Result<BoxStream<'static, Result<Fetched>>> {
        if self.cursor_limit.is_some() {
            let cursor = first.info.as_ref().and_then(|i| i.cursor.clone());
            return Ok(self.by_cursor(cursor));
        }
        let Some(per) = self.per_page else {
            return Ok(stream::empty().boxed());
        };
        if (first.rows.len() as u64) < per || self.wanted_pages <= 1 {
            return Ok(stream::empty().boxed());
        }
        let Some(total) = first.info.as_ref().and_then(|i| i.pages(per)) else {
            let keys = self.page_keys(&first.rows);
            return Ok(self.one_by_one(keys));
        };
        let last = total.min(self.wanted_pages);
        if last > self.max_pages {
            return Err(self.too_many(&first.endpoint, Some(total)));
        }
        let conc = self.concurrency;
        let keep = last <= LARGEST_CACHED_LISTING;
        Ok(stream::iter(2..=last)
            .map(move |p| self.clone().fetch(p, keep))
            .buffered(conc)
            .boxed())
    }

    /// Page after page until a short or empty one (the official SDKs' way when no total is
    /// given). A page identical to the one before means the server ignores `page`: stop.
    fn one_by_one(self: Arc<Self>, first_keys: Vec<Value>) -> BoxStream<'static, Result<Fetched>> {
        let per = self.per_page.unwrap_or(u64::MAX);
        stream::unfold(Some((2u64, first_keys)), move |state| {
            let me = self.clone();
            async move {
                let (page, previous) = state?;
                if page > me.wanted_pages {
                    return None;
                }
                if page > me.max_pages {
                    return Some((Err(me.too_many(&me.path, None)), None));
                }
                match me.clone().fetch(page, page <= LARGEST_CACHED_LISTING).await {
                    Err(e) => Some((Err(e), None)),
                    Ok(f) if !f.rows.is_empty() && me.page_keys(&f.rows) == previous => {
                        let note = format!(
                            "warning: {}: page {page} repeats page {} (the API ignores paging); stopped there",
                            f.endpoint,
                            page - 1
                        );
                        Some((Ok(Fetched { rows: Vec::new(), note: Some(note), ..f }), None))
                    }
                    Ok(f) => {
                        let more = f.rows.len() as u64 >= per && !f.rows.is_empty();
                        let next = more.then(|| (page + 1, me.page_keys(&f.rows)));
                        Some((Ok(f), next))
                    }
                }
            }
        })
        .boxed()
    }

    /// Page after page, each from the cursor the one before returned, until a page comes
    /// without one (or empty). A cursor returned twice would loop: stop with a note.
    fn by_cursor(self: Arc<Self>, first: Option<String>) -> BoxStream<'static, Result<Fetched>> {
        let seen: HashSet<String> = HashSet::new();
        stream::unfold(first.map(|c| (2u64, c, seen)), move |state| {
            let me = self.clone();
            async move {
                let (page, cursor, mut seen) = state?;
                if page > me.wanted_pages {
                    return None;
                }
                if page > me.max_pages {
                    return Some((Err(me.too_many(&me.path, None)), None));
                }
                seen.insert(cursor.clone());
                match me.clone().fetch_at(None, Some(cursor), false).await {
                    Err(e) => Some((Err(e), None)),
                    Ok(f) => {
                        let next = f.info.as_ref().and_then(|i| i.cursor.clone());
                        match next {
                            Some(c) if seen.contains(&c) => {
                                let note = format!(
                                    "warning: {}: the API returned a cursor it had returned before; stopped after page {page}",
                                    f.endpoint
                                );
                                Some((Ok(Fetched { note: Some(note), ..f }), None))
                            }
                            Some(c) if !f.rows.is_empty() => Some((Ok(f), Some((page + 1, c, seen)))),
                            _ => Some((Ok(f), None)),
                        }
                    }
                }
            }
        })
        .boxed()
    }

    /// What tells two pages apart: their ids in order (fields such as `last_used_on` may
    /// move between two reads), or the whole rows when there is no id.
    fn page_keys(&self, rows: &[Value]) -> Vec<Value> {
        match &self.id_key {
            Some(k) => rows
                .iter()
                .map(|r| r.get(k).cloned().unwrap_or(Value::Null))
                .collect(),
            None => rows.to_vec(),
        }
    }

    fn too_many(&self, endpoint: &str, total: Option<u64>) -> Error {
        Error::TooManyPages {
            endpoint: endpoint.to_string(),
            pages: total,
            max: self.max_pages,
        }
    }
}

/// What a listing has seen so far: row ids (a row that moved to a later page while the
/// list changed is not returned twice) and the first page's total.
struct Seen {
    id_key: Option<String>,
    ids: HashSet<String>,
    first_total: Option<Option<u64>>,
    changed: bool,
}

impl Seen {
    fn new(id_key: Option<String>) -> Self {
        Self {
            id_key,
            ids: HashSet::new(),
            first_total: None,
            changed: false,
        }
    }

    fn page(&mut self, f: Fetched) -> Page {
        let mut notes: Vec<String> = f.note.into_iter().collect();
        let total = f.info.as_ref().and_then(|i| i.total_count);
        match self.first_total {
            None => self.first_total = Some(total),
            Some(first) if first != total && total.is_some() && !self.changed => {
                self.changed = true;
                notes.push(format!(
                    "warning: {}: the list changed while it was read (total_count {} then {}); a row may be missing: run the statement again",
                    f.endpoint,
                    first.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                    total.unwrap_or_default()
                ));
            }
            Some(_) => {}
        }
        let before = f.rows.len();
        let rows: Vec<Value> = match &self.id_key {
            None => f.rows,
            Some(key) => f
                .rows
                .into_iter()
                .filter(|r| match r.get(key).and_then(Value::as_str) {
                    Some(id) => self.ids.insert(id.to_string()),
                    None => true,
                })
                .collect(),
        };
        if rows.len() < before {
            notes.push(format!(
                "note: {}: {} row(s) already read on an earlier page were left out (the list shifted while it was read)",
                f.endpoint,
                before - rows.len()
            ));
        }
        Page {
            endpoint: f.endpoint,
            rows,
            notes,
            cached: f.cached,
        }
    }
}

/// The rows of a response, by the method's response shape.
fn rows_of(
    result: &Value,
    shape: ResponseShape,
    method: &reqwest::Method,
    endpoint: &str,
) -> Result<Vec<Value>> {
    match (shape, result) {
        (ResponseShape::List, Value::Array(a)) => Ok(a.clone()),
        (ResponseShape::List, Value::Null) => Ok(Vec::new()),
        (ResponseShape::Object | ResponseShape::Id, Value::Object(_)) => Ok(vec![result.clone()]),
        (ResponseShape::Value, v) => Ok(vec![v.clone()]),
        (_, other) => Err(Error::Decode {
            method: method.as_str().into(),
            path: endpoint.into(),
            status: 200,
            detail: format!(
                "expected {} in 'result', got {}",
                if shape == ResponseShape::List {
                    "an array"
                } else {
                    "an object"
                },
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                }
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fetched(ids: &[&str], total: u64) -> Fetched {
        let info = ResultInfo {
            total_count: Some(total),
            ..Default::default()
        };
        Fetched {
            endpoint: "GET /t".into(),
            rows: ids.iter().map(|i| json!({"id": i})).collect(),
            info: Some(info),
            note: None,
            cached: false,
        }
    }

    #[test]
    fn a_row_that_shifts_to_a_later_page_is_returned_once() {
        let mut seen = Seen::new(Some("id".into()));
        let p1 = seen.page(fetched(&["a", "b"], 4));
        assert_eq!(p1.rows.len(), 2);
        assert!(p1.notes.is_empty());
        // A row was inserted before "b": "b" moved to page 2, and the total grew.
        let p2 = seen.page(fetched(&["b", "c"], 5));
        assert_eq!(p2.rows, vec![json!({"id": "c"})]);
        assert_eq!(p2.notes.len(), 2, "{:?}", p2.notes);
        assert!(p2.notes[0].contains("total_count 4 then 5"));
        assert!(p2.notes[1].contains("1 row(s) already read"));
        // The change is reported once per listing.
        assert!(seen.page(fetched(&["d"], 5)).notes.is_empty());
    }
}
