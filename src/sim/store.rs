//! Ordered in-memory collections with O(page) listing, plus the cached "not expired" view of tokens.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::model::Token;

/// Objects kept in creation order, addressable by id. Listing a page costs the
/// page, not the collection; deleting costs one `memmove` of the id list.
pub struct OrderedStore<T> {
    order: Vec<String>,
    by_id: HashMap<String, T>,
    version: u64,
}

impl<T> Default for OrderedStore<T> {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            by_id: HashMap::new(),
            version: 0,
        }
    }
}

impl<T> OrderedStore<T> {
    /// A store of `items`, in their order, keyed by `id`.
    pub fn of(items: impl IntoIterator<Item = T>, id: impl Fn(&T) -> String) -> Self {
        let mut store = Self::default();
        for item in items {
            store.insert(id(&item), item);
        }
        store
    }

    /// Adds an object at the end of the order.
    pub fn insert(&mut self, id: String, item: T) {
        self.order.push(id.clone());
        self.by_id.insert(id, item);
        self.version += 1;
    }

    /// The object with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id)
    }

    /// The object with this id, for change. Bumps the version.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let item = self.by_id.get_mut(id);
        if item.is_some() {
            self.version += 1;
        }
        item
    }

    /// The object with this id, for a change that does not affect listing
    /// (such as `last_used_on`): the version stays, so cached views stay valid.
    pub fn get_mut_untracked(&mut self, id: &str) -> Option<&mut T> {
        self.by_id.get_mut(id)
    }

    /// Removes the object with this id.
    pub fn remove(&mut self, id: &str) -> Option<T> {
        let item = self.by_id.remove(id)?;
        if let Some(pos) = self.order.iter().position(|x| x == id) {
            self.order.remove(pos);
        }
        self.version += 1;
        Some(item)
    }

    /// Ids in creation order.
    pub fn ids(&self) -> &[String] {
        &self.order
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Changes on every insert, update and delete.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Objects in creation order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.order.iter().filter_map(|id| self.by_id.get(id))
    }
}

/// A page of a list: which slice of `ids` to return, in which direction.
pub struct PageRequest {
    /// 1-based page number.
    pub page: usize,
    /// Page size.
    pub per_page: usize,
    /// `desc` reverses the creation order.
    pub descending: bool,
}

impl PageRequest {
    /// The items of this page, out of the full ordered list.
    pub fn slice<'a, T>(&self, ids: &'a [T]) -> Vec<&'a T> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        if start >= ids.len() {
            return Vec::new();
        }
        let end = (start + self.per_page).min(ids.len());
        if self.descending {
            let n = ids.len();
            (start..end).map(|i| &ids[n - 1 - i]).collect()
        } else {
            ids[start..end].iter().collect()
        }
    }
}

/// API tokens of one owner, with a cached list of the ones not yet expired
/// (the default listing hides expired tokens unless `include_expired=true`).
#[derive(Default)]
pub struct TokenStore {
    /// The tokens.
    pub tokens: OrderedStore<Token>,
    live_cache: Option<LiveCache>,
}

struct LiveCache {
    version: u64,
    valid_until: Option<DateTime<Utc>>,
    ids: Vec<String>,
}

impl TokenStore {
    /// Ids of tokens not expired at `now`, in creation order. Rebuilt only when
    /// the store changed or the earliest listed expiry has passed.
    pub fn live_ids(&mut self, now: DateTime<Utc>) -> &[String] {
        let fresh = self.live_cache.as_ref().is_some_and(|c| {
            c.version == self.tokens.version() && c.valid_until.is_none_or(|t| now < t)
        });
        if !fresh {
            let mut ids = Vec::new();
            let mut valid_until: Option<DateTime<Utc>> = None;
            for t in self.tokens.values() {
                if !t.is_expired(now) {
                    ids.push(t.id.clone());
                    if let Some(e) = t.expires_on {
                        valid_until = Some(valid_until.map_or(e, |v| v.min(e)));
                    }
                }
            }
            self.live_cache = Some(LiveCache {
                version: self.tokens.version(),
                valid_until,
                ids,
            });
        }
        &self.live_cache.as_ref().expect("cache was just filled").ids
    }
}
