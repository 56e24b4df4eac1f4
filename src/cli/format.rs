//! Output formats: table, csv, tsv, json, ndjson, markdown. Timestamps print as RFC 3339
//! UTC; JSON columns stay nested JSON in json/ndjson; tables shorten long cells only on
//! terminals, only for reads, and never in a secret column.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use crate::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use crate::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use crate::arrow::util::display::{ArrayFormatter, FormatOptions};
use crate::arrow::util::pretty::pretty_format_batches;
use crate::convert::{SECRET_METADATA, cell_json};
use serde_json::{Map, Value};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned table with borders.
    Table,
    /// Comma-separated values with a header.
    Csv,
    /// Tab-separated values with a header.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Markdown table.
    Markdown,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "markdown" | "md" => Format::Markdown,
            other => {
                return Err(format!(
                    "unknown format '{other}' (formats: table, csv, tsv, json, ndjson, markdown)"
                ));
            }
        })
    }
}

impl Format {
    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Markdown => "markdown",
        }
    }
}

/// Longest cell in a terminal table before it is cut with an ellipsis.
const TERMINAL_CELL: usize = 60;

fn text_cells(array: &ArrayRef) -> Vec<Option<String>> {
    let opts = FormatOptions::default().with_null("");
    let fmt = ArrayFormatter::try_new(array.as_ref(), &opts).ok();
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                None
            } else if let Some(s) = array.as_string_opt::<i32>() {
                Some(s.value(i).to_string())
            } else {
                fmt.as_ref().map(|f| f.value(i).to_string())
            }
        })
        .collect()
}

fn is_json_field(f: &Field) -> bool {
    crate::convert::is_json(f)
}

/// The JSON value of a cell for json/ndjson output (JSON columns nested).
fn json_cell(field: &Field, array: &ArrayRef, i: usize) -> Value {
    let v = cell_json(array, i);
    if is_json_field(field)
        && let Value::String(s) = &v
        && let Ok(parsed) = serde_json::from_str::<Value>(s)
    {
        return parsed;
    }
    v
}

/// Rows as JSON objects, JSON columns nested.
pub fn json_rows(batches: &[RecordBatch]) -> Vec<Value> {
    let mut objs = Vec::new();
    for b in batches {
        let s = b.schema();
        for i in 0..b.num_rows() {
            let m: Map<String, Value> = s
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, a)| (f.name().clone(), json_cell(f, a, i)))
                .collect();
            objs.push(Value::Object(m));
        }
    }
    objs
}

/// One field per line, a header per record (psql's expanded display).
fn write_expanded(out: &mut dyn Write, batches: &[RecordBatch]) -> std::io::Result<()> {
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Ok(());
    };
    let width = schema
        .fields()
        .iter()
        .map(|f| f.name().chars().count())
        .max()
        .unwrap_or(0);
    let mut record = 0;
    for b in batches {
        let cols: Vec<Vec<Option<String>>> = b.columns().iter().map(text_cells).collect();
        for i in 0..b.num_rows() {
            record += 1;
            let head = format!("-[ RECORD {record} ]");
            writeln!(
                out,
                "{head}{}",
                "-".repeat((width + 3).saturating_sub(head.len()).max(1))
            )?;
            for (f, c) in schema.fields().iter().zip(&cols) {
                writeln!(
                    out,
                    "{:<width$} | {}",
                    f.name(),
                    c[i].as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(())
}

fn truncate(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let cols: Vec<ArrayRef> = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(a, f)| {
                    if f.metadata().contains_key(SECRET_METADATA)
                        || !matches!(
                            a.data_type(),
                            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                        )
                    {
                        return a.clone();
                    }
                    let cut: StringArray = text_cells(a)
                        .into_iter()
                        .map(|c| {
                            c.map(|s| {
                                if s.chars().count() > TERMINAL_CELL {
                                    format!(
                                        "{}…",
                                        s.chars().take(TERMINAL_CELL - 1).collect::<String>()
                                    )
                                } else {
                                    s
                                }
                            })
                        })
                        .collect();
                    Arc::new(cut) as ArrayRef
                })
                .collect();
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .map(|f| {
                    Field::new(
                        f.name(),
                        if matches!(f.data_type(), DataType::LargeUtf8 | DataType::Utf8View) {
                            DataType::Utf8
                        } else {
                            f.data_type().clone()
                        },
                        true,
                    )
                })
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap_or_else(|_| b.clone())
        })
        .collect()
}

/// When a table is shown one field per line (psql's `\x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expanded {
    /// Always.
    On,
    /// Never.
    Off,
    /// When the table is wider than the terminal.
    #[default]
    Auto,
}

impl FromStr for Expanded {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "on" => Ok(Expanded::On),
            "off" => Ok(Expanded::Off),
            "auto" => Ok(Expanded::Auto),
            other => Err(format!("expected on, off or auto, got '{other}'")),
        }
    }
}

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// Shorten long cells (reads on a terminal); secret columns never are.
    pub cut: bool,
    /// One field per line: on, off, or when wider than `width`.
    pub expanded: Expanded,
    /// The terminal's width, when the output is a terminal.
    pub width: Option<usize>,
}

/// Writes `batches` (with `schema`, for headers of empty results) in `format`. Only
/// tables are shortened or expanded, as `layout` says.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    layout: Layout,
) -> std::io::Result<()> {
    let batches: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .cloned()
        .collect();
    match format {
        Format::Table => write_table(out, schema, &batches, layout),
        Format::Csv => write_delimited(out, b',', schema, &batches),
        Format::Tsv => write_delimited(out, b'\t', schema, &batches),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &json_rows(&batches))
                .map_err(std::io::Error::other)?;
            writeln!(out)
        }
        Format::Ndjson => json_rows(&batches)
            .iter()
            .try_for_each(|o| writeln!(out, "{o}")),
        Format::Markdown => write_markdown(out, schema, &batches),
    }
}

fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    layout: Layout,
) -> std::io::Result<()> {
    if batches.is_empty() {
        let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        if !header.is_empty() {
            writeln!(out, "{}", header.join(" | "))?;
        }
        return writeln!(out, "(0 rows)");
    }
    let shown = if layout.cut {
        truncate(batches)
    } else {
        batches.to_vec()
    };
    let text = pretty_format_batches(&shown)
        .map_err(std::io::Error::other)?
        .to_string();
    let too_wide = layout
        .width
        .is_some_and(|w| text.lines().any(|l| l.chars().count() > w));
    match (layout.expanded, too_wide) {
        (Expanded::On, _) | (Expanded::Auto, true) => write_expanded(out, &shown)?,
        _ => writeln!(out, "{text}")?,
    }
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
}

fn write_delimited(
    out: &mut dyn Write,
    delimiter: u8,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(out);
    w.write_record(schema.fields().iter().map(|f| f.name().as_str()))
        .map_err(std::io::Error::other)?;
    for b in batches {
        let cols: Vec<Vec<Option<String>>> = b.columns().iter().map(text_cells).collect();
        for i in 0..b.num_rows() {
            w.write_record(cols.iter().map(|c| c[i].clone().unwrap_or_default()))
                .map_err(std::io::Error::other)?;
        }
    }
    w.flush()
}

fn write_markdown(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::io::Result<()> {
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let names: Vec<String> = schema.fields().iter().map(|f| esc(f.name())).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}|", vec!["---"; names.len()].join("|"))?;
    for b in batches {
        let cols: Vec<Vec<Option<String>>> = b.columns().iter().map(text_cells).collect();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = cols
                .iter()
                .map(|c| esc(c[i].as_deref().unwrap_or("")))
                .collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{rows_to_batch, schema_of};
    use crate::provider::{ColumnSpec, ColumnType};

    fn sample() -> (SchemaRef, Vec<RecordBatch>) {
        let cols = vec![
            ColumnSpec::named("name", ColumnType::Utf8),
            ColumnSpec::named("policies", ColumnType::Json),
        ];
        let schema = schema_of(&cols);
        let rows = [
            serde_json::json!({"name": "a|b", "policies": [{"effect": "allow"}]}),
            serde_json::json!({"name": null}),
        ];
        (
            schema.clone(),
            vec![rows_to_batch(&schema, &cols, &rows, &[], "GET", "/t").unwrap()],
        )
    }

    fn render(format: Format) -> String {
        let (schema, batches) = sample();
        let mut out = Vec::new();
        let layout = Layout {
            cut: false,
            expanded: Expanded::Off,
            width: None,
        };
        write(&mut out, format, &schema, &batches, layout).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_format_writes_every_row_and_nulls_as_empty() {
        assert_eq!(
            render(Format::Csv),
            "name,policies\na|b,\"[{\"\"effect\"\":\"\"allow\"\"}]\"\n,\n"
        );
        assert_eq!(
            render(Format::Tsv),
            "name\tpolicies\na|b\t\"[{\"\"effect\"\":\"\"allow\"\"}]\"\n\t\n"
        );
        assert_eq!(
            render(Format::Markdown),
            "| name | policies |\n|---|---|\n| a\\|b | [{\"effect\":\"allow\"}] |\n|  |  |\n"
        );
        assert!(render(Format::Table).ends_with("(2 rows)\n"));
    }

    #[test]
    fn json_output_nests_json_columns() {
        let lines: Vec<serde_json::Value> = render(Format::Ndjson)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"name": "a|b", "policies": [{"effect": "allow"}]})
        );
        assert_eq!(
            lines[1],
            serde_json::json!({"name": null, "policies": null})
        );
    }
}
