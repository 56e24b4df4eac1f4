//! Session configuration: credentials, base URL, default account, limits and write safety,
//! from the environment, a profile file (`~/.config/cfql/config.toml`) or code.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The official API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// A Cloudflare credential. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    ApiToken(String),
    /// `X-Auth-Email` + `X-Auth-Key` (the global API key).
    GlobalKey {
        /// Account email.
        email: String,
        /// Global API key.
        key: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken(<redacted>)"),
            Credentials::GlobalKey { .. } => {
                f.write_str("GlobalKey { email: <redacted>, key: <redacted> }")
            }
        }
    }
}

/// What a fan-out over accounts does when some accounts fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanoutErrors {
    /// The query fails and names the failed accounts (default).
    #[default]
    Fail,
    /// The failed accounts are reported as warnings on stderr; the others' rows are returned.
    Warn,
}

/// Everything a [`crate::Session`] needs. Build it with [`Config::from_env`],
/// [`Config::load`] (profile file plus environment) or [`Config::new`] and the `with_*` setters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Credential sent on every call.
    pub credentials: Option<Credentials>,
    /// API base URL (`CLOUDFLARE_BASE_URL`).
    pub base_url: String,
    /// Default account for account-scoped tables (`CLOUDFLARE_ACCOUNT_ID`).
    pub account_id: Option<String>,
    /// HTTP calls in flight at once (default 16).
    pub concurrency: usize,
    /// Client-side rate limit: requests per window (default 1,200 per 300 s, Cloudflare's limit).
    pub rate_limit: u32,
    /// Window of the rate limit.
    pub rate_window: Duration,
    /// Retries of a failed idempotent call (default 4).
    pub max_retries: u32,
    /// Longest total time spent waiting between retries of one call (default 30 s).
    pub retry_budget: Duration,
    /// First backoff delay (doubles each retry, with jitter).
    pub retry_base_delay: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Fan-out failure policy.
    pub fanout_errors: FanoutErrors,
    /// Writes list their HTTP calls instead of making them.
    pub dry_run: bool,
    /// UPDATE/REPLACE/DELETE without WHERE are allowed.
    pub allow_unfiltered_writes: bool,
    /// Values of `{{ name }}` template variables.
    pub vars: HashMap<String, String>,
    /// Secrets returned by create/roll/rotate are also appended here (JSON lines, mode 0600).
    pub secrets_file: Option<PathBuf>,
    /// Every mutating call is recorded here (JSON lines, no secrets).
    pub audit_log: Option<PathBuf>,
    /// Largest response body read (default 64 MiB); a larger one is an error, not memory.
    pub max_response_bytes: u64,
    /// Longest a statement waits in all for the API budget before it fails (default 15 min,
    /// enough to sit out one 5-minute block); zero fails at once.
    pub budget_wait: Duration,
    /// How long GET answers are reused within a session (default 60 s; zero turns the cache off).
    pub cache_ttl: Duration,
    /// Most pages one listing reads (default 10,000, i.e. 500,000 rows at 50 a page), so a
    /// server that ignores `page` cannot keep cfql paging forever.
    pub max_pages: u64,
}

/// Most HTTP calls in flight at once that cfql accepts.
pub const MAX_CONCURRENCY: usize = 1024;
/// Longest window, timeout or retry budget accepted (one day).
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

impl Default for Config {
    fn default() -> Self {
        Self {
            credentials: None,
            base_url: DEFAULT_BASE_URL.into(),
            account_id: None,
            concurrency: 16,
            rate_limit: 1200,
            rate_window: Duration::from_secs(300),
            max_retries: 4,
            retry_budget: Duration::from_secs(30),
            retry_base_delay: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            fanout_errors: FanoutErrors::Fail,
            dry_run: false,
            allow_unfiltered_writes: false,
            vars: HashMap::new(),
            secrets_file: None,
            audit_log: None,
            budget_wait: Duration::from_secs(900),
            cache_ttl: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
            max_pages: 10_000,
        }
    }
}

/// One profile of `~/.config/cfql/config.toml`: a credential with its settings, or an
/// aggregate (`profiles = ["prod", "staging-*"]`, with at most `fanout_errors`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    profiles: Option<Vec<String>>,
    api_token: Option<String>,
    email: Option<String>,
    api_key: Option<String>,
    base_url: Option<String>,
    account_id: Option<String>,
    concurrency: Option<usize>,
    rate_limit: Option<u32>,
    rate_window_secs: Option<u64>,
    max_retries: Option<u32>,
    retry_budget_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    fanout_errors: Option<String>,
    max_response_mb: Option<u64>,
    max_pages: Option<u64>,
    budget_wait_secs: Option<u64>,
    cache_ttl_secs: Option<u64>,
}

impl Config {
    /// Defaults pointed at `base_url`, with no credential.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }

    /// Checks that every limit is in range (a huge concurrency or window would overflow
    /// the rate limiter). The message names the setting as the profile spells it.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}, got {}",
                self.concurrency
            ));
        }
        if self.rate_limit == 0 {
            return Err("rate_limit must be at least 1".into());
        }
        let durations = [
            ("rate_window_secs", self.rate_window),
            ("retry_budget_secs", self.retry_budget),
            ("request_timeout_secs", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("budget_wait_secs", self.budget_wait),
            ("cache_ttl_secs", self.cache_ttl),
        ];
        for (name, d) in durations {
            if d > MAX_DURATION {
                return Err(format!(
                    "{name} must be at most {} seconds (one day), got {}",
                    MAX_DURATION.as_secs(),
                    d.as_secs()
                ));
            }
        }
        if self.rate_window.is_zero() {
            return Err("rate_window_secs must be at least 1".into());
        }
        if self.max_response_bytes < 1024 || self.max_pages == 0 {
            return Err("max_response_mb and max_pages must be at least 1".into());
        }
        Ok(())
    }

    /// Uses an API token.
    pub fn with_api_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::ApiToken(token.into()));
        self
    }

    /// Uses the global key.
    pub fn with_global_key(mut self, email: impl Into<String>, key: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::GlobalKey {
            email: email.into(),
            key: key.into(),
        });
        self
    }

    /// Sets the default account.
    pub fn with_account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = Some(id.into());
        self
    }

    /// Sets the number of HTTP calls in flight at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets a template variable.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Writes list their calls instead of making them.
    pub fn with_dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// Configuration from the environment only: `CLOUDFLARE_API_TOKEN`, or
    /// `CLOUDFLARE_EMAIL` + `CLOUDFLARE_API_KEY`; `CLOUDFLARE_BASE_URL`; `CLOUDFLARE_ACCOUNT_ID`.
    pub fn from_env() -> Result<Self> {
        let mut c = Self::default();
        c.apply_env(|k| std::env::var(k).ok());
        Ok(c)
    }

    /// The configuration a profile file's text gives (no environment applied): `profile`,
    /// else `default` when it exists. `path` names the file in errors.
    pub fn from_profile_text(text: &str, profile: Option<&str>, path: &Path) -> Result<Self> {
        let mut c = Self::default();
        let mut profiles: HashMap<String, Profile> = toml::from_str(text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?;
        let name = profile.unwrap_or("default");
        match profiles.remove(name) {
            Some(p) => c.apply_profile(p, path)?,
            None if profile.is_some() => return Err(unknown_profile(name, &profiles, path)),
            None => {}
        }
        Ok(c)
    }

    /// The connections `names` select in the config file (default
    /// `~/.config/cfql/config.toml`), each named after its profile, in order: a name is a
    /// profile, an aggregate profile (`profiles = [...]`, expanded in its order) or a
    /// pattern (`*` any run of characters, `?` one: every matching non-aggregate profile,
    /// sorted). A profile reached twice is one connection. No name is [`Config::load`]'s
    /// profile (`default`, which may be an aggregate). With one connection the environment
    /// overrides the profile as in [`Config::load`]; with several it is not read (which
    /// credential would `CLOUDFLARE_API_TOKEN` replace?).
    pub fn load_connections(
        names: &[String],
        file: Option<&Path>,
    ) -> Result<Vec<(String, Config)>> {
        let path = file.map(Path::to_path_buf).or_else(default_config_path);
        let text = match &path {
            Some(p) if p.exists() || file.is_some() => {
                std::fs::read_to_string(p).map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?
            }
            _ => String::new(),
        };
        let path = path.unwrap_or_else(|| PathBuf::from("config.toml"));
        let profiles: HashMap<String, Profile> = toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?;
        let is_aggregate = |n: &str| profiles.get(n).is_some_and(|p| p.profiles.is_some());
        if names.len() <= 1
            && !names
                .first()
                .is_some_and(|n| is_aggregate(n) || is_pattern(n))
        {
            let default_aggregate = names.is_empty() && is_aggregate("default");
            if !default_aggregate {
                let name = names.first().map(String::as_str);
                let config = Self::load(name, file)?;
                return Ok(vec![(name.unwrap_or("default").to_string(), config)]);
            }
        }
        let wanted = if names.is_empty() {
            vec!["default".to_string()]
        } else {
            names.to_vec()
        };
        let mut picked: Vec<(String, Option<String>)> = Vec::new();
        for n in &wanted {
            expand(&profiles, n, None, &path, &mut picked, 0)?;
        }
        if picked.is_empty() {
            return Err(Error::Config(format!(
                "{}: no profile matches {}",
                path.display(),
                wanted.join(", ")
            )));
        }
        picked
            .into_iter()
            .map(|(name, fanout)| {
                let mut p = profiles[&name].clone();
                p.fanout_errors = fanout.or(p.fanout_errors);
                let mut c = Self::default();
                c.apply_profile(p, &path)
                    .map_err(|e| Error::Config(format!("profile '{name}': {e}")))?;
                Ok((name, c))
            })
            .collect()
    }

    /// Configuration from a profile of the config file (default `~/.config/cfql/config.toml`,
    /// profile `default` when it exists), with the environment overriding it.
    pub fn load(profile: Option<&str>, file: Option<&Path>) -> Result<Self> {
        let path = file.map(Path::to_path_buf).or_else(default_config_path);
        let mut c = Self::default();
        if let Some(path) = path.filter(|p| p.exists() || file.is_some()) {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            c = Self::from_profile_text(&text, profile, &path)?;
        } else if let Some(p) = profile {
            return Err(Error::Config(format!(
                "profile '{p}' was asked for but there is no config file (expected {})",
                default_config_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/cfql/config.toml".into())
            )));
        }
        c.apply_env(|k| std::env::var(k).ok());
        Ok(c)
    }

    fn apply_profile(&mut self, p: Profile, path: &Path) -> Result<()> {
        if p.profiles.is_some() {
            return Err(Error::Config(format!(
                "{}: this profile aggregates others (profiles = [...]); it is used by naming it with --profile, not as one credential",
                path.display()
            )));
        }
        if let Some(t) = p.api_token {
            self.credentials = Some(Credentials::ApiToken(t));
        } else if let (Some(email), Some(key)) = (p.email, p.api_key) {
            self.credentials = Some(Credentials::GlobalKey { email, key });
        }
        if let Some(v) = p.base_url {
            self.base_url = v;
        }
        self.account_id = p.account_id.or(self.account_id.take());
        if let Some(v) = p.concurrency {
            self.concurrency = v.max(1);
        }
        if let Some(v) = p.rate_limit {
            self.rate_limit = v.max(1);
        }
        if let Some(v) = p.rate_window_secs {
            self.rate_window = Duration::from_secs(v.max(1));
        }
        if let Some(v) = p.max_retries {
            self.max_retries = v;
        }
        if let Some(v) = p.retry_budget_secs {
            self.retry_budget = Duration::from_secs(v);
        }
        if let Some(v) = p.request_timeout_secs {
            self.request_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = p.max_response_mb {
            self.max_response_bytes = v.saturating_mul(1 << 20);
        }
        if let Some(v) = p.max_pages {
            self.max_pages = v;
        }
        if let Some(v) = p.budget_wait_secs {
            self.budget_wait = Duration::from_secs(v);
        }
        if let Some(v) = p.cache_ttl_secs {
            self.cache_ttl = Duration::from_secs(v);
        }
        self.check()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        match p.fanout_errors.as_deref() {
            None | Some("fail") => {}
            Some("warn") => self.fanout_errors = FanoutErrors::Warn,
            Some(o) => {
                return Err(Error::Config(format!(
                    "{}: fanout_errors must be 'fail' or 'warn', got '{o}'",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        if let Some(t) = get("CLOUDFLARE_API_TOKEN") {
            self.credentials = Some(Credentials::ApiToken(t));
        } else if let (Some(email), Some(key)) =
            (get("CLOUDFLARE_EMAIL"), get("CLOUDFLARE_API_KEY"))
        {
            self.credentials = Some(Credentials::GlobalKey { email, key });
        }
        if let Some(u) = get("CLOUDFLARE_BASE_URL") {
            self.base_url = u;
        }
        if let Some(a) = get("CLOUDFLARE_ACCOUNT_ID") {
            self.account_id = Some(a);
        }
    }
}

/// The error for a profile `name` that the file at `path` does not have, listing those it has.
fn unknown_profile(name: &str, profiles: &HashMap<String, Profile>, path: &Path) -> Error {
    let mut known: Vec<_> = profiles.keys().cloned().collect();
    known.sort();
    Error::Config(format!(
        "profile '{name}' is not in {} (profiles there: {})",
        path.display(),
        if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        }
    ))
}

/// Whether a profile name is a pattern (`*`, `?`).
fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// Whether `name` matches `pattern` (`*` any run of characters, `?` one character).
fn matches(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            matches(&pattern[1..], name) || (!name.is_empty() && matches(pattern, &name[1..]))
        }
        (Some('?'), Some(_)) => matches(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => matches(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Adds the credential profiles `name` stands for to `picked` (each once, in order), with
/// the `fanout_errors` of the aggregate that named them.
fn expand(
    profiles: &HashMap<String, Profile>,
    name: &str,
    fanout: Option<String>,
    path: &Path,
    picked: &mut Vec<(String, Option<String>)>,
    depth: usize,
) -> Result<()> {
    if depth > 8 {
        return Err(Error::Config(format!(
            "{}: profiles aggregate each other in a loop (through '{name}')",
            path.display()
        )));
    }
    let mut add = |n: &str, f: Option<String>| {
        if !picked.iter().any(|(p, _)| p == n) {
            picked.push((n.to_string(), f));
        }
    };
    if is_pattern(name) {
        let pattern: Vec<char> = name.chars().collect();
        let mut hits: Vec<&String> = profiles
            .iter()
            .filter(|(n, p)| {
                p.profiles.is_none() && matches(&pattern, &n.chars().collect::<Vec<_>>())
            })
            .map(|(n, _)| n)
            .collect();
        hits.sort();
        for n in hits {
            add(n, fanout.clone());
        }
        return Ok(());
    }
    let Some(p) = profiles.get(name) else {
        return Err(unknown_profile(name, profiles, path));
    };
    match &p.profiles {
        None => {
            add(name, fanout);
            Ok(())
        }
        Some(members) => {
            let own = p.fanout_errors.clone().or(fanout);
            for m in members {
                expand(profiles, m, own.clone(), path, picked, depth + 1)?;
            }
            Ok(())
        }
    }
}

/// `$XDG_CONFIG_HOME/cfql/config.toml`, else `~/.config/cfql/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("cfql/config.toml"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/cfql/config.toml"))
}
