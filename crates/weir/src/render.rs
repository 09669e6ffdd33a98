//! Printing a query's result as an aligned table, CSV or JSON.

use serde_json::Value;
use weir_core::query::QueryResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns with a header, numbers right-aligned.
    Table,
    /// RFC 4180 CSV with a header line; NULL is an empty field.
    Csv,
    /// A JSON array with an object per row.
    Json,
}

pub fn render(result: &QueryResult, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => table(result),
        OutputFormat::Csv => csv(result),
        OutputFormat::Json => json(result),
    }
}

/// A cell as text: strings as themselves (control characters escaped), NULL as `NULL`, the rest as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => s.escape_debug().to_string(),
        other => other.to_string(),
    }
}

fn table(result: &QueryResult) -> String {
    let header: Vec<String> = result.columns.iter().map(|c| c.name.clone()).collect();
    let types: Vec<String> = result.columns.iter().map(|c| c.kind.to_lowercase()).collect();
    let cells: Vec<Vec<String>> = result.rows.iter().map(|row| row.iter().map(cell).collect()).collect();
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            result
                .rows
                .iter()
                .all(|row| matches!(row.get(i), Some(Value::Number(_) | Value::Null)))
        })
        .collect();
    let width = |i: usize| {
        std::iter::once(header[i].chars().count())
            .chain(std::iter::once(types[i].chars().count()))
            .chain(cells.iter().map(|row| row[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |values: &[String], right: &dyn Fn(usize) -> bool| {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if right(i) {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        format!("│ {} │\n", parts.join(" │ "))
    };
    let rule = |left: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}\n", parts.join(mid))
    };
    let mut out = rule("┌", "┬", "┐");
    out.push_str(&line(&header, &|_| false));
    out.push_str(&line(&types, &|_| false));
    out.push_str(&rule("├", "┼", "┤"));
    for row in &cells {
        out.push_str(&line(row, &|i| numeric[i]));
    }
    out.push_str(&rule("└", "┴", "┘"));
    let n = result.rows.len();
    out.push_str(&format!(
        "{n} row{}{}\n",
        if n == 1 { "" } else { "s" },
        if result.truncated {
            " (more not shown: raise --max-rows)"
        } else {
            ""
        }
    ));
    out
}

fn csv(result: &QueryResult) -> String {
    let mut out = Vec::new();
    let write_line = |out: &mut Vec<u8>, fields: &mut dyn Iterator<Item = Option<String>>| {
        for (i, field) in fields.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if let Some(text) = field {
                weir_core::transform::csv::write_field(out, &text);
            }
        }
        out.push(b'\n');
    };
    write_line(&mut out, &mut result.columns.iter().map(|c| Some(c.name.clone())));
    for row in &result.rows {
        write_line(
            &mut out,
            &mut row.iter().map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }),
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(result: &QueryResult) -> String {
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|row| {
            Value::Object(
                result
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.name.clone(), v.clone()))
                    .collect(),
            )
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&rows).expect("JSON values serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_core::query::QueryColumn;

    fn result() -> QueryResult {
        QueryResult {
            columns: vec![
                QueryColumn {
                    name: "n".into(),
                    kind: "BIGINT".into(),
                },
                QueryColumn {
                    name: "s".into(),
                    kind: "VARCHAR".into(),
                },
            ],
            rows: vec![vec![json!(1), json!("a,b")], vec![json!(22), Value::Null]],
            truncated: false,
        }
    }

    #[test]
    fn table_aligns_numbers_right_and_shows_null() {
        let text = render(&result(), OutputFormat::Table);
        assert!(text.contains("│      1 │ a,b     │"), "{text}");
        assert!(text.contains("│     22 │ NULL    │"), "{text}");
        assert!(text.ends_with("2 rows\n"), "{text}");
    }

    #[test]
    fn csv_quotes_and_leaves_null_empty() {
        assert_eq!(render(&result(), OutputFormat::Csv), "n,s\n1,\"a,b\"\n22,\n");
    }

    #[test]
    fn json_is_an_array_of_objects() {
        let parsed: Value = serde_json::from_str(&render(&result(), OutputFormat::Json)).expect("json");
        assert_eq!(parsed, json!([{"n": 1, "s": "a,b"}, {"n": 22, "s": null}]));
    }
}
