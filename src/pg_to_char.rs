//! PostgreSQL's `to_char(timestamp, template)`: DataFusion's `to_char` reads chrono's
//! `%Y-%m-%d`, so a PostgreSQL template such as `'YYYY-MM-DD'` came back as the template
//! itself, a silent wrong answer in every audit that formats a date. This one reads the
//! template as PostgreSQL does (`YYYY`, `MM`, `DD`, `HH24`, `MI`, `SS`, `Mon`, `Day`, `FM`,
//! `"quoted text"`, ...); a template holding `%` is taken as chrono's, as before, so
//! queries written for DataFusion keep working. Other first arguments (numbers) go to
//! DataFusion's function, which says what it supports.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::arrow::array::{Array, ArrayRef, StringBuilder, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The `to_char` every session has (in place of DataFusion's).
pub(crate) fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar {
        inner: datafusion::functions::datetime::to_char(),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let temporal = args.args.first().is_some_and(|a| {
            matches!(
                a.data_type(),
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
            )
        });
        let template = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(t)))) if !t.contains('%') => {
                t.clone()
            }
            _ => return self.inner.invoke_with_args(args),
        };
        if !temporal {
            return self.inner.invoke_with_args(args);
        }
        let parts = compile(&template)?;
        let rows = args.number_rows;
        let values = args.args[0].clone().into_array(rows)?;
        let micros = cast(
            &values,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?;
        let micros = micros
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| DataFusionError::Internal("to_char: not a timestamp".into()))?;
        let mut out = StringBuilder::new();
        for i in 0..micros.len() {
            match (!micros.is_null(i))
                .then(|| DateTime::<Utc>::from_timestamp_micros(micros.value(i)))
                .flatten()
            {
                Some(t) => out.append_value(render(&parts, &t)),
                None => out.append_null(),
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(array),
        })
    }
}

/// One piece of a template: a field (with fill mode) or text to copy.
#[derive(Debug, PartialEq)]
enum Part {
    Field { field: Field, fill: bool },
    Text(String),
}

/// The fields cfql renders; their spellings are in [`FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year4,
    Year2,
    Month,
    Day,
    DayOfYear,
    Hour24,
    Hour12,
    Minute,
    Second,
    Millis,
    Micros,
    Meridiem(Case),
    MonthName(Case, bool),
    DayName(Case, bool),
    Quarter,
    IsoWeek,
    TimeZone,
    Offset,
}

/// How a name is written: `MONTH`, `Month` or `month`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Title,
    Lower,
}

/// Every pattern, longest first where one is the start of another (`HH24` before `HH`).
const FIELDS: &[(&str, Field)] = &[
    ("YYYY", Field::Year4),
    ("YY", Field::Year2),
    ("MONTH", Field::MonthName(Case::Upper, true)),
    ("Month", Field::MonthName(Case::Title, true)),
    ("month", Field::MonthName(Case::Lower, true)),
    ("MON", Field::MonthName(Case::Upper, false)),
    ("Mon", Field::MonthName(Case::Title, false)),
    ("mon", Field::MonthName(Case::Lower, false)),
    ("MM", Field::Month),
    ("DAY", Field::DayName(Case::Upper, true)),
    ("Day", Field::DayName(Case::Title, true)),
    ("day", Field::DayName(Case::Lower, true)),
    ("DY", Field::DayName(Case::Upper, false)),
    ("Dy", Field::DayName(Case::Title, false)),
    ("dy", Field::DayName(Case::Lower, false)),
    ("DDD", Field::DayOfYear),
    ("DD", Field::Day),
    ("HH24", Field::Hour24),
    ("HH12", Field::Hour12),
    ("HH", Field::Hour12),
    ("MI", Field::Minute),
    ("SS", Field::Second),
    ("MS", Field::Millis),
    ("US", Field::Micros),
    ("AM", Field::Meridiem(Case::Upper)),
    ("PM", Field::Meridiem(Case::Upper)),
    ("am", Field::Meridiem(Case::Lower)),
    ("pm", Field::Meridiem(Case::Lower)),
    ("Q", Field::Quarter),
    ("IW", Field::IsoWeek),
    ("TZ", Field::TimeZone),
    ("OF", Field::Offset),
];

/// Patterns PostgreSQL has and cfql does not render: refused by name, never copied as
/// text (which would be a wrong answer that looks right).
const UNSUPPORTED: &[&str] = &[
    "Y,YYY", "YYY", "IYYY", "IYY", "SSSS", "A.M.", "P.M.", "a.m.", "p.m.", "CC", "WW", "ID", "J",
    "W", "D", "Y", "I", "TH", "th", "RM", "rm", "FX", "TM", "SP",
];

/// The template read into parts, or an error naming a pattern cfql does not render.
fn compile(template: &str) -> DfResult<Vec<Part>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    let mut fill = false;
    while let Some(c) = rest.chars().next() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let (inside, after) = match quoted.find('"') {
                Some(e) => (&quoted[..e], &quoted[e + 1..]),
                None => (quoted, ""),
            };
            text.push_str(inside);
            rest = after;
            continue;
        }
        if c == '\\' && rest.len() > 1 {
            let next = rest[1..].chars().next().expect("non-empty");
            text.push(next);
            rest = &rest[1 + next.len_utf8()..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("FM") {
            fill = true;
            rest = r;
            continue;
        }
        if let Some((name, field)) = FIELDS.iter().find(|(name, _)| rest.starts_with(name)) {
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Field {
                field: *field,
                fill: std::mem::take(&mut fill),
            });
            rest = &rest[name.len()..];
            continue;
        }
        if let Some(name) = UNSUPPORTED.iter().find(|name| rest.starts_with(*name)) {
            return Err(DataFusionError::Plan(format!(
                "to_char: the pattern {name} is not supported by cfql (supported: {}; put text in double quotes)",
                FIELDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
            )));
        }
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

fn render(parts: &[Part], t: &DateTime<Utc>) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Field { field, fill } => out.push_str(&field_text(*field, *fill, t)),
        }
    }
    out
}

fn field_text(field: Field, fill: bool, t: &DateTime<Utc>) -> String {
    let num = |n: u32, width: usize| {
        if fill {
            n.to_string()
        } else {
            format!("{n:0width$}")
        }
    };
    let name = |full: &str, case: Case, pad: usize| {
        let s = match case {
            Case::Upper => full.to_uppercase(),
            Case::Title => full.to_string(),
            Case::Lower => full.to_lowercase(),
        };
        if fill { s } else { format!("{s:<pad$}") }
    };
    match field {
        Field::Year4 => num(t.year().max(0) as u32, 4),
        Field::Year2 => num(t.year().rem_euclid(100) as u32, 2),
        Field::Month => num(t.month(), 2),
        Field::Day => num(t.day(), 2),
        Field::DayOfYear => num(t.ordinal(), 3),
        Field::Hour24 => num(t.hour(), 2),
        Field::Hour12 => num(t.hour12().1, 2),
        Field::Minute => num(t.minute(), 2),
        Field::Second => num(t.second(), 2),
        Field::Millis => num(t.timestamp_subsec_millis(), 3),
        Field::Micros => num(t.timestamp_subsec_micros(), 6),
        Field::Meridiem(case) => {
            let pm = t.hour12().0;
            let s = if pm { "PM" } else { "AM" };
            if case == Case::Lower {
                s.to_lowercase()
            } else {
                s.into()
            }
        }
        Field::MonthName(case, long) => {
            let full = t.format("%B").to_string();
            match long {
                true => name(&full, case, 9),
                false => name(&full[..3], case, 3),
            }
        }
        Field::DayName(case, long) => {
            let full = t.format("%A").to_string();
            match long {
                true => name(&full, case, 9),
                false => name(&full[..3], case, 3),
            }
        }
        Field::Quarter => (t.month0() / 3 + 1).to_string(),
        Field::IsoWeek => num(t.iso_week().week(), 2),
        Field::TimeZone => "UTC".into(),
        Field::Offset => "+00".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(template: &str) -> String {
        let t = DateTime::parse_from_rfc3339("2026-03-07T14:05:09.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        render(&compile(template).unwrap(), &t)
    }

    #[test]
    fn templates_read_as_postgresql_reads_them() {
        assert_eq!(fmt("YYYY-MM-DD"), "2026-03-07");
        assert_eq!(fmt("YYYY-MM-DD HH24:MI:SS.MS"), "2026-03-07 14:05:09.123");
        assert_eq!(fmt("HH12:MI AM"), "02:05 PM");
        assert_eq!(fmt("Mon DD, YYYY"), "Mar 07, 2026");
        assert_eq!(fmt("FMMonth FMDD"), "March 7");
        assert_eq!(fmt("Month|"), "March    |");
        assert_eq!(fmt("DAY dy"), "SATURDAY  sat");
        assert_eq!(fmt("\"Quarter\" Q, \"week\" IW"), "Quarter 1, week 10");
        assert_eq!(fmt("YYYY\"YYYY\"\\MM"), "2026YYYYMM");
        assert_eq!(fmt("DDD US"), "066 123456");
    }

    #[test]
    fn patterns_not_rendered_are_refused() {
        let e = compile("YYYY-MM-DD D").unwrap_err().to_string();
        assert!(e.contains("the pattern D is not supported"), "{e}");
        assert!(compile("J").is_err());
    }
}
