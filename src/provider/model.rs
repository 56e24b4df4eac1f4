//! The manifest model: services, resources, columns, methods and views as declared in `providers/`.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;

/// One manifest file: a service and its resources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Schema name under the `cloudflare` catalog (`user`, `accounts`, `access`).
    pub service: String,
    /// Other schema names that resolve to this service (StackQL names).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line for `SHOW SERVICES`.
    #[serde(default)]
    pub description: String,
    /// Tables backed by the API.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    /// Views defined in SQL over other tables.
    #[serde(default)]
    pub views: Vec<ViewSpec>,
}

/// A view: a named SQL query over the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewSpec {
    /// Table name.
    pub name: String,
    /// One line for `SHOW RESOURCES`.
    #[serde(default)]
    pub description: String,
    /// The query.
    pub sql: String,
    /// Its columns, for `DESCRIBE` (checked against what the query returns when the
    /// catalog is registered: a view whose columns differ fails to load).
    #[serde(default)]
    pub columns: Vec<ViewColumn>,
}

/// A view's column, as `DESCRIBE` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewColumn {
    /// Column name.
    pub name: String,
    /// Arrow type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// What it holds, and how it is derived.
    #[serde(default)]
    pub description: String,
    /// What DESCRIBE's `key` column says of it (how to push down or what it costs);
    /// `view column` when empty.
    #[serde(default)]
    pub key: String,
}

/// A table backed by API methods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Table name.
    pub name: String,
    /// Other table names that resolve here (StackQL names such as `user_tokens`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line for `SHOW RESOURCES`.
    #[serde(default)]
    pub description: String,
    /// The key column and the API's name for it.
    #[serde(default)]
    pub id: Option<IdSpec>,
    /// The column that names an object to a person (`name`): a DELETE shows it, and
    /// the check after a create whose answer was lost looks for it.
    #[serde(default)]
    pub label: Option<String>,
    /// Path prefixes that scope the resource (account, zone).
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    /// For API tokens: the path (with `{scope}`) that tells which token the session
    /// authenticates with, so that a write on that token runs after every other call.
    #[serde(default)]
    pub verify: Option<String>,
    /// Columns, in table order.
    pub columns: Vec<ColumnSpec>,
    /// API methods.
    pub methods: Vec<MethodSpec>,
}

/// The key column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// Column holding the id.
    pub column: String,
    /// Path parameter name (`token_id`), also accepted in SQL as an alias of the column.
    pub param: String,
}

/// A path prefix that scopes a resource, filled from a column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// Column (and path parameter) holding the scope id.
    pub column: String,
    /// Prefix substituted for `{scope}` in method paths, such as `/accounts/{account_id}`.
    pub prefix: String,
    /// When no value is given (and no default account): the table (`service.table`)
    /// whose rows' ids are the scope values to query, concurrently.
    #[serde(default)]
    pub fanout: Option<String>,
    /// Whether the configured default account (`CLOUDFLARE_ACCOUNT_ID`) fills this scope
    /// when a statement gives no value.
    #[serde(default)]
    pub default_account: bool,
    /// The fan-out over `fanout` runs only when the WHERE asks for this scope's rows
    /// (`zone_id IS NOT NULL`): a call per row of the source is too dear for every
    /// statement. A scan that could hold such rows and did not read them says so in a note.
    #[serde(default)]
    pub opt_in: bool,
    /// The scope value goes in the list's query string (`?zone_id=...`, Origin CA's
    /// `/certificates`) instead of a path prefix.
    #[serde(default)]
    pub query: bool,
}

/// Arrow type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text.
    Utf8,
    /// 64-bit integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Boolean,
    /// RFC 3339 date-time, as `Timestamp(µs, UTC)`.
    Timestamp,
    /// A calendar day (`2026-12-03`), as `Date32`.
    Date,
    /// Nested JSON, as JSON text.
    Json,
}

impl ColumnType {
    /// The Arrow type.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Utf8 | ColumnType::Json => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Date => DataType::Date32,
        }
    }

    /// The name shown by `DESCRIBE`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "text",
            ColumnType::Int64 => "bigint",
            ColumnType::Float64 => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp(UTC)",
            ColumnType::Date => "date",
            ColumnType::Json => "json (text)",
        }
    }
}

/// A column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name, also the JSON key it is read from.
    pub name: String,
    /// Arrow type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// What it holds.
    #[serde(default)]
    pub description: String,
    /// Only returned by writes (create, roll, rotate); never readable by SELECT.
    #[serde(default)]
    pub secret: bool,
    /// Filled from the request's scope, not from the JSON.
    #[serde(default)]
    pub scope: bool,
    /// JSON object keys renamed on read (old spellings to current ones).
    #[serde(default)]
    pub rename_keys: BTreeMap<String, String>,
    /// Allowed values, checked before a write.
    #[serde(default, rename = "enum")]
    pub enum_values: Vec<String>,
    /// Longest allowed text, checked before a write.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Values the API reports but does not accept back (`expired`): left out when
    /// an UPDATE writes the current value back.
    #[serde(default)]
    pub read_only_values: Vec<String>,
    /// Read from this dotted path of the object instead of the key of the column's
    /// name (`account.id` for a zone's `account_id`); such a column is never written.
    #[serde(default)]
    pub from: Option<String>,
}

impl ColumnSpec {
    /// A plain column of this name and type (for params and envelope members that are not manifest columns).
    pub fn named(name: &str, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
            description: String::new(),
            secret: false,
            scope: false,
            rename_keys: Default::default(),
            enum_values: Vec::new(),
            max_length: None,
            read_only_values: Vec::new(),
            from: None,
        }
    }
}

/// Which SQL statement a method serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// SELECT (list or get).
    Select,
    /// INSERT.
    Insert,
    /// UPDATE / REPLACE.
    Update,
    /// DELETE.
    Delete,
    /// EXEC (lifecycle methods).
    Exec,
}

impl Verb {
    /// Upper-case SQL name.
    pub fn sql(self) -> &'static str {
        match self {
            Verb::Select => "SELECT",
            Verb::Insert => "INSERT",
            Verb::Update => "UPDATE / REPLACE",
            Verb::Delete => "DELETE",
            Verb::Exec => "EXEC",
        }
    }
}

/// Where a method's data sits in the envelope's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseShape {
    /// An array of objects (one row each).
    #[default]
    List,
    /// One object (one row).
    Object,
    /// A bare JSON value, placed in `result_column`.
    Value,
    /// `{"id": ...}`.
    Id,
}

/// An API-side filter the list method accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Column the SQL predicate is on.
    pub column: String,
    /// `eq` for `col = 'v'`, `like` for `col LIKE '%v%'`.
    pub op: FilterOp,
    /// Query parameter sent.
    pub param: String,
    /// The list cannot run without it (Audit Logs' `since`): a statement whose WHERE does
    /// not give it is refused, naming the column to bound. Never filled by a guess.
    #[serde(default)]
    pub required: bool,
    /// For an `upper` bound the WHERE does not give: send the current time (plus a minute
    /// of clock skew). Only where nothing can be newer than now, so the answer is the same.
    #[serde(default)]
    pub default_now: bool,
    /// Added to the error of a missing required filter (how views over the table take it).
    #[serde(default)]
    pub hint: Option<String>,
}

/// Predicate kind of a [`FilterSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    /// Equality.
    Eq,
    /// `LIKE '%text%'`, sent as a substring search.
    Like,
    /// A lower bound of a time column (`>=`, `>`, BETWEEN, `CAST(col AS DATE) >= d`),
    /// sent as an RFC 3339 time no later than the bound.
    Lower,
    /// An upper bound of a time column (`<`, `<=`, ...), sent as a time no earlier than
    /// the bound: the API's rows are a superset and DataFusion applies the exact predicate.
    Upper,
}

/// An API method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// Method name (`list`, `get`, `create`, `update_value`...).
    pub name: String,
    /// Other names accepted by EXEC (`roll`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// SQL verb served.
    pub verb: Verb,
    /// HTTP method.
    pub http: String,
    /// Path template below the base URL.
    pub path: String,
    /// One line for `SHOW METHODS`.
    #[serde(default)]
    pub description: String,
    /// Required params; `a|b` means one of them.
    #[serde(default)]
    pub required: Vec<String>,
    /// Optional params.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Fields sent in the JSON body.
    #[serde(default)]
    pub body: Vec<String>,
    /// Where the data sits in the response.
    #[serde(default)]
    pub response: ResponseShape,
    /// Column receiving a bare-value result.
    #[serde(default)]
    pub result_column: Option<String>,
    /// Page-number paging with this page size (the API's maximum).
    #[serde(default)]
    pub per_page: Option<u32>,
    /// Cursor paging (`limit=` this, then `cursor=` the previous page's
    /// `result_info.cursor`), as Audit Logs v2 pages; pages are read one after another.
    #[serde(default)]
    pub cursor_limit: Option<u32>,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// API-side filters.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Scope columns this method supports (default: all of the resource's).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Types of params that are not columns (such as a grace-window timestamp).
    #[serde(default)]
    pub param_types: BTreeMap<String, ColumnType>,
}

impl MethodSpec {
    /// Whether `name` names this method.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

impl ResourceSpec {
    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The first method serving `verb`, preferring one with (or without) an id in its path.
    pub fn method(&self, verb: Verb, by_id: bool) -> Option<&MethodSpec> {
        let has_id = |m: &&MethodSpec| {
            self.id
                .as_ref()
                .is_some_and(|id| m.path.contains(&format!("{{{}}}", id.param)))
        };
        self.methods
            .iter()
            .filter(|m| m.verb == verb)
            .find(|m| has_id(m) == by_id)
    }

    /// Whether `method` names an object by id with no scope in its path (Origin CA's
    /// `/certificates/{id}`): it cannot tell whether the object belongs to a given scope,
    /// so a statement that names a scope lists that scope instead, and a write reads first.
    pub fn scope_blind(&self, method: &MethodSpec) -> bool {
        !self.scopes.is_empty()
            && !method.path.contains("{scope}")
            && self
                .id
                .as_ref()
                .is_some_and(|i| method.path.contains(&format!("{{{}}}", i.param)))
    }

    /// Whether a scan whose WHERE pins ids (and maybe scopes) reads them by id: only when
    /// the GET can vouch for the scope the WHERE names.
    pub fn reads_by_id(&self, ids_pinned: bool, scopes_pinned: bool) -> bool {
        match self.method(Verb::Select, true) {
            Some(get) => ids_pinned && !(scopes_pinned && self.scope_blind(get)),
            None => false,
        }
    }

    /// The scope spec of a column.
    pub fn scope(&self, column: &str) -> Option<&ScopeSpec> {
        self.scopes.iter().find(|s| s.column == column)
    }

    /// The scopes `method` may run in (all of them, unless the method names some).
    pub fn allowed_scopes<'a>(
        &'a self,
        method: &'a MethodSpec,
    ) -> impl Iterator<Item = &'a ScopeSpec> + 'a {
        self.scopes
            .iter()
            .filter(move |s| method.scopes.is_empty() || method.scopes.contains(&s.column))
    }

    /// The column that holds an object's id (`id` when the manifest declares none).
    pub fn id_column(&self) -> &str {
        self.id.as_ref().map(|i| i.column.as_str()).unwrap_or("id")
    }

    /// Columns visible to SELECT (secrets excluded).
    pub fn readable_columns(&self) -> impl Iterator<Item = &ColumnSpec> {
        self.columns.iter().filter(|c| !c.secret)
    }
}
