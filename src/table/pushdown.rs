//! Which WHERE predicates the API can answer: ids (GET per id), scopes (path prefix)
//! and API-side filters (query string). Everything is pushed as Inexact, so DataFusion
//! still applies the predicate to what comes back.

use std::collections::BTreeMap;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, expr::InList, expr::Like,
};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use datafusion::arrow::datatypes::DataType;

use crate::provider::{FilterOp, FilterSpec, ResourceSpec, Verb};

/// What the API will be asked, derived from the WHERE clause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPlan {
    /// Ids pinned by `id = x` / `id IN (...)`: one GET each, no list.
    pub ids: Option<Vec<String>>,
    /// Scope values pinned per scope column.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Query parameters for API-side filters.
    pub api_filters: Vec<(String, String)>,
    /// Opt-in scope columns the WHERE asks rows of (`zone_id IS NOT NULL`).
    pub opted_in: Vec<String>,
    /// Opt-in scope columns the WHERE rules out (`zone_id IS NULL`): no note is owed.
    pub opted_out: Vec<String>,
}

fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

/// `col = 'v'` or `col IN ('a', 'b')`: the column and its values.
fn equality(e: &Expr) -> Option<(&str, Vec<String>)> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            if let (Some(c), Some(v)) = (column_name(left), literal_text(right)) {
                Some((c, vec![v]))
            } else if let (Some(c), Some(v)) = (column_name(right), literal_text(left)) {
                Some((c, vec![v]))
            } else {
                None
            }
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (lc, mut lv) = equality(left)?;
            let (rc, rv) = equality(right)?;
            if lc != rc {
                return None;
            }
            lv.extend(rv);
            Some((lc, lv))
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let c = column_name(expr)?;
            let vals: Option<Vec<String>> = list.iter().map(literal_text).collect();
            Some((c, vals?))
        }
        _ => None,
    }
}

/// A bound's literal as an instant; a date is its midnight (UTC), and `<= date` reaches
/// to the next midnight so that `CAST(col AS DATE) <= d` keeps all of day `d`.
fn instant(v: &ScalarValue, op: Operator) -> Option<DateTime<Utc>> {
    let at = match v {
        ScalarValue::TimestampSecond(Some(s), _) => DateTime::from_timestamp(*s, 0)?,
        ScalarValue::TimestampMillisecond(Some(ms), _) => DateTime::from_timestamp_millis(*ms)?,
        ScalarValue::TimestampMicrosecond(Some(us), _) => DateTime::from_timestamp_micros(*us)?,
        ScalarValue::TimestampNanosecond(Some(ns), _) => DateTime::from_timestamp_nanos(*ns),
        ScalarValue::Date32(Some(d)) => {
            let midnight = DateTime::from_timestamp(i64::from(*d) * 86_400, 0)?;
            return Some(midnight + Duration::days(i64::from(op == Operator::LtEq)));
        }
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc)
        }
        _ => return None,
    };
    Some(at)
}

/// `col >= t`, `col > t`, `t < col`, ... on a time: the column, whether it is a lower
/// bound, and the bound widened to whole seconds plus one, so that the API's rows are a
/// superset whether its `since` / `before` include their instant or not.
fn bound(e: &Expr) -> Option<(&str, bool, String)> {
    // Only a time compared as a time (or as a day): `CAST(t AS VARCHAR) >= '...'` orders
    // text, not instants, and must not be sent as a range.
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (c, v, op) = match (
        time_column(left),
        time_column(right),
        right.as_ref(),
        left.as_ref(),
    ) {
        (Some(c), None, Expr::Literal(v, _), _) => (c, v, *op),
        (None, Some(c), _, Expr::Literal(v, _)) => (c, v, op.swap()?),
        _ => return None,
    };
    let lower = match op {
        Operator::Gt | Operator::GtEq => true,
        Operator::Lt | Operator::LtEq => false,
        _ => return None,
    };
    let at = instant(v, op)?;
    let secs = at.timestamp();
    let widened = if lower {
        secs - 1
    } else {
        secs + 1 + i64::from(at.timestamp_subsec_nanos() > 0)
    };
    let text = DateTime::from_timestamp(widened, 0)?.to_rfc3339_opts(SecondsFormat::Secs, true);
    Some((c, lower, text))
}

/// The column of a bound's side: the column itself, or the column cast to a time or a date.
fn time_column(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c)
            if matches!(
                c.field.data_type(),
                DataType::Date32 | DataType::Timestamp(..)
            ) =>
        {
            time_column(&c.expr)
        }
        _ => None,
    }
}

/// `col IS NOT NULL` (true) or `col IS NULL` (false).
fn null_test(e: &Expr) -> Option<(&str, bool)> {
    match e {
        Expr::IsNotNull(c) => Some((column_name(c)?, true)),
        Expr::IsNull(c) => Some((column_name(c)?, false)),
        _ => None,
    }
}

/// `col LIKE '%text%'` with no other wildcard: the column and the text.
fn contains(e: &Expr) -> Option<(&str, String)> {
    match e {
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char: None,
            ..
        }) => {
            let c = column_name(expr)?;
            let p = literal_text(pattern)?;
            let inner = p.strip_prefix('%')?.strip_suffix('%')?;
            if inner.is_empty() || inner.contains(['%', '_', '\\']) {
                return None;
            }
            Some((c, inner.to_string()))
        }
        _ => None,
    }
}

fn id_column(r: &ResourceSpec) -> Option<&str> {
    let id = r.id.as_ref()?;
    r.method(Verb::Select, true).map(|_| id.column.as_str())
}

/// Whether the API can use this predicate.
pub fn classify(r: &ResourceSpec, e: &Expr) -> TableProviderFilterPushDown {
    if let Some((col, lower, _)) = bound(e)
        && bound_filter(r, col, lower).is_some()
    {
        return TableProviderFilterPushDown::Inexact;
    }
    if let Some((col, _)) = null_test(e)
        && r.scope(col).is_some_and(|s| s.opt_in)
    {
        return TableProviderFilterPushDown::Inexact;
    }
    if let Some((col, _)) = equality(e) {
        if Some(col) == id_column(r) || r.scope(col).is_some() {
            return TableProviderFilterPushDown::Inexact;
        }
        let list = r.method(Verb::Select, false);
        if list.is_some_and(|m| {
            m.filters
                .iter()
                .any(|f| f.column == col && f.op == FilterOp::Eq)
        }) && matches!(e, Expr::BinaryExpr(_))
        {
            return TableProviderFilterPushDown::Inexact;
        }
    }
    if let Some((col, _)) = contains(e) {
        let list = r.method(Verb::Select, false);
        if list.is_some_and(|m| {
            m.filters
                .iter()
                .any(|f| f.column == col && f.op == FilterOp::Like)
        }) {
            return TableProviderFilterPushDown::Inexact;
        }
    }
    TableProviderFilterPushDown::Unsupported
}

/// The query parameters of the list: the pushed filters, then each `default_now` bound
/// the WHERE left open, as the current time plus a minute (nothing is newer than now).
pub fn list_query(r: &ResourceSpec, plan: &ScanPlan) -> Vec<(String, String)> {
    let mut q = plan.api_filters.clone();
    let list = r.method(Verb::Select, false).into_iter();
    for f in list.flat_map(|m| &m.filters).filter(|f| f.default_now) {
        if !q.iter().any(|(p, _)| p == &f.param) {
            let soon = Utc::now() + Duration::minutes(1);
            q.push((
                f.param.clone(),
                soon.to_rfc3339_opts(SecondsFormat::Secs, true),
            ));
        }
    }
    q
}

/// The error for a list filter the API requires and the WHERE does not give: it names
/// the column to bound (never a default range picked for the user).
pub fn missing_required(table: &str, r: &ResourceSpec, plan: &ScanPlan) -> Option<crate::Error> {
    let list = r.method(Verb::Select, false)?;
    let f = list
        .filters
        .iter()
        .find(|f| f.required && !plan.api_filters.iter().any(|(p, _)| p == &f.param))?;
    let example = match f.op {
        FilterOp::Lower => format!("WHERE {} >= now() - INTERVAL '7 days'", f.column),
        FilterOp::Upper => format!("WHERE {} < now()", f.column),
        _ => format!("WHERE {} = '<value>'", f.column),
    };
    Some(crate::Error::MissingParam {
        table: table.to_string(),
        param: format!("a bound on {} (the API's {})", f.column, f.param),
        hint: format!(
            "the API refuses a listing without it and cfql does not pick a range for you; add {example} (or any >=, >, BETWEEN or CAST({} AS DATE) >= date){}",
            f.column,
            f.hint
                .as_deref()
                .map(|h| format!("; {h}"))
                .unwrap_or_default()
        ),
    })
}

/// The list's filter taking a lower (or upper) bound of `col`.
fn bound_filter<'a>(r: &'a ResourceSpec, col: &str, lower: bool) -> Option<&'a FilterSpec> {
    let op = if lower {
        FilterOp::Lower
    } else {
        FilterOp::Upper
    };
    r.method(Verb::Select, false)?
        .filters
        .iter()
        .find(|f| f.column == col && f.op == op)
}

/// Keeps the tighter of two bounds (RFC 3339 texts of one format order as times).
fn tighten(filters: &mut Vec<(String, String)>, param: &str, value: String, lower: bool) {
    match filters.iter_mut().find(|(p, _)| p == param) {
        Some((_, old)) if (lower && value > *old) || (!lower && value < *old) => *old = value,
        Some(_) => {}
        None => filters.push((param.to_string(), value)),
    }
}

fn intersect(existing: Option<Vec<String>>, new: Vec<String>) -> Vec<String> {
    match existing {
        None => new,
        Some(old) => old.into_iter().filter(|v| new.contains(v)).collect(),
    }
}

/// The ids and scopes of a WHERE made only of id and scope equalities (`id = 'a'`,
/// `id IN (...)`, `account_id = 'b'`), so that a DELETE can call by id without reading;
/// `None` when any predicate says something else.
pub fn pins_only(r: &ResourceSpec, filters: &[Expr]) -> Option<ScanPlan> {
    let conjuncts: Vec<Expr> = filters
        .iter()
        .flat_map(split_conjunction)
        .cloned()
        .collect();
    let is_key = |col: &str| Some(col) == id_column(r) || r.scope(col).is_some();
    let all_keys = conjuncts
        .iter()
        .all(|f| equality(f).is_some_and(|(col, _)| is_key(col)));
    all_keys.then(|| analyze(r, &conjuncts))
}

/// Builds the scan plan from the pushed predicates (a conjunction).
pub fn analyze(r: &ResourceSpec, filters: &[Expr]) -> ScanPlan {
    let mut plan = ScanPlan::default();
    let list = r.method(Verb::Select, false);
    for f in filters {
        if let Some((col, lower, at)) = bound(f)
            && let Some(fs) = bound_filter(r, col, lower)
        {
            tighten(&mut plan.api_filters, &fs.param, at, lower);
            continue;
        }
        if let Some((col, not_null)) = null_test(f)
            && r.scope(col).is_some_and(|s| s.opt_in)
        {
            match not_null {
                true => plan.opted_in.push(col.to_string()),
                false => plan.opted_out.push(col.to_string()),
            }
            continue;
        }
        if let Some((col, vals)) = equality(f) {
            if Some(col) == id_column(r) {
                let mut v = intersect(plan.ids.take(), vals);
                v.dedup();
                plan.ids = Some(v);
                continue;
            }
            if r.scope(col).is_some() {
                let v = intersect(plan.scopes.remove(col), vals);
                plan.scopes.insert(col.to_string(), v);
                continue;
            }
            if let (Some(m), [v]) = (list, vals.as_slice())
                && let Some(fs) = m
                    .filters
                    .iter()
                    .find(|fs| fs.column == col && fs.op == FilterOp::Eq)
                && !plan.api_filters.iter().any(|(p, _)| p == &fs.param)
            {
                plan.api_filters.push((fs.param.clone(), v.clone()));
                continue;
            }
        }
        if let (Some((col, text)), Some(m)) = (contains(f), list)
            && let Some(fs) = m
                .filters
                .iter()
                .find(|fs| fs.column == col && fs.op == FilterOp::Like)
            && !plan.api_filters.iter().any(|(p, _)| p == &fs.param)
        {
            plan.api_filters.push((fs.param.clone(), text));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Registry;
    use datafusion::prelude::{cast, col, lit};

    fn tokens() -> ResourceSpec {
        Registry::embedded()
            .unwrap()
            .resolve(&["accounts".into(), "tokens".into()])
            .unwrap()
            .spec
            .as_ref()
            .clone()
    }

    #[test]
    fn ids_and_scopes_alone_pin_a_delete() {
        let r = tokens();
        let f = [col("id")
            .in_list(vec![lit("a"), lit("b")], false)
            .and(col("account_id").eq(lit("acc")))];
        let pins = pins_only(&r, &f).expect("only keys");
        assert_eq!(pins.ids, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            pins.scopes.get("account_id"),
            Some(&vec!["acc".to_string()])
        );
    }

    #[test]
    fn any_other_predicate_means_the_rows_are_read_first() {
        let r = tokens();
        assert!(
            pins_only(
                &r,
                &[col("id").eq(lit("a")), col("status").eq(lit("active"))]
            )
            .is_none()
        );
        assert!(pins_only(&r, &[col("id").eq(lit("a")).or(col("name").eq(lit("x")))]).is_none());
        assert!(pins_only(&r, &[col("id").in_list(vec![lit("a")], true)]).is_none());
    }

    #[test]
    fn an_id_pinned_twice_keeps_what_both_allow() {
        let r = tokens();
        let plan = analyze(
            &r,
            &[
                col("id").in_list(vec![lit("a"), lit("b")], false),
                col("id").eq(lit("b")),
            ],
        );
        assert_eq!(plan.ids, Some(vec!["b".to_string()]));
        let none = analyze(&r, &[col("id").eq(lit("a")), col("id").eq(lit("b"))]);
        assert_eq!(none.ids, Some(vec![]));
    }

    #[test]
    fn like_with_inner_wildcards_stays_in_datafusion() {
        let r = Registry::embedded()
            .unwrap()
            .resolve(&["accounts".into(), "accounts".into()])
            .unwrap()
            .spec
            .as_ref()
            .clone();
        assert_eq!(
            classify(&r, &col("name").eq(lit("x"))),
            TableProviderFilterPushDown::Inexact
        );
        assert_eq!(
            classify(&r, &col("type").eq(lit("x"))),
            TableProviderFilterPushDown::Unsupported
        );
    }

    #[test]
    fn a_time_bound_is_sent_only_when_the_column_is_compared_as_a_time() {
        let r = Registry::embedded()
            .unwrap()
            .resolve(&["accounts".into(), "audit_logs".into()])
            .unwrap()
            .spec
            .as_ref()
            .clone();
        let at = || {
            lit(ScalarValue::TimestampMicrosecond(
                Some(1_793_000_000_000_000),
                Some("UTC".into()),
            ))
        };
        let plan = analyze(
            &r,
            &[col("action_time").gt_eq(at()), at().gt(col("action_time"))],
        );
        assert_eq!(
            plan.api_filters,
            [
                ("since".to_string(), "2026-10-26T07:33:19Z".to_string()),
                ("before".to_string(), "2026-10-26T07:33:21Z".to_string()),
            ]
        );
        // Text order is not time order: a cast to text is never a range.
        let text = cast(col("action_time"), DataType::Utf8).gt_eq(lit("2026-11-01T10:00:00+05:00"));
        assert_eq!(
            classify(&r, &text),
            TableProviderFilterPushDown::Unsupported
        );
        assert!(analyze(&r, &[text]).api_filters.is_empty());
        // A day: `<= d` reaches the end of day d.
        let day = cast(col("action_time"), DataType::Date32)
            .lt_eq(lit(ScalarValue::Date32(Some(20_400))));
        assert_eq!(
            analyze(&r, &[day]).api_filters,
            [("before".to_string(), "2025-11-09T00:00:01Z".to_string())]
        );
    }
}
