//! The Snowflake SQL that loads a delivery stream's S3 objects with Snowpipe: a storage integration, a
//! file format that reads exactly what weir writes, an external stage, a table, and an auto-ingest pipe.
//! Pure: [`load_script`] turns a delivery's definition into statements; `weir snowflake` prints them.
//!
//! # What maps to what
//! | weir | Snowflake |
//! |---|---|
//! | `format = "ndjson"` (`newline`, `flatten`) | `TYPE = JSON`, one `VARIANT` column `RECORD` plus the file name, row number and load time |
//! | `format = "csv"` (`csv` transform) | [`SNOWFLAKE_FILE_FORMAT`], one typed column per declared column, loaded by position |
//! | `format = { kind = "parquet", … }` | `TYPE = PARQUET`, typed columns loaded with `MATCH_BY_COLUMN_NAME` |
//! | compression `none` / `gzip` / `zstd` | `COMPRESSION = NONE / GZIP / ZSTD` (explicit: Snowflake does not auto-detect zstd) |
//! | compression `snappy` (framed) | an error: Snowflake's CSV and JSON formats take no Snappy (only Avro, ORC and Parquet do, inside the file) |
//! | column `string` `integer` `float` `boolean` `timestamp` `json` | `VARCHAR` `NUMBER(38,0)` `FLOAT` `BOOLEAN` `TIMESTAMP_TZ` `VARIANT` |
//!
//! # Choices
//! - Every statement is `CREATE … IF NOT EXISTS`: rerunning the script never replaces an object.
//!   Replacing the pipe would reset its load history (files would load twice), replacing the integration
//!   would change its external id (breaking the IAM trust policy).
//! - Identifiers are always double-quoted. A name that is a plain identifier (`user_id`) is written in
//!   upper case (`"USER_ID"`), which is what the unquoted name resolves to, so queries need no quotes;
//!   any other name keeps its spelling and is matched case-sensitively.
//! - The stage covers the literal head of the delivery's `prefix`, and the pipe's `PATTERN` matches only
//!   this delivery's object names (`<name>-<version>-<time>-<uuid><ext>`), so other deliveries in the same
//!   bucket are not loaded. Error output objects are named alike but never compressed, so an uncompressed
//!   delivery whose error output prefix may fall under the stage is refused.
//! - `ON_ERROR = SKIP_FILE`, Snowpipe's default, stated: a file that does not load is skipped whole and
//!   shows in `COPY_HISTORY` (and in Snowpipe's error notifications, which need it), never half-loaded.

use crate::transform::TransformSpec;
use crate::transform::csv::{ColumnType, CsvColumn, SNOWFLAKE_FILE_FORMAT};
use std::fmt::Write as _;

/// What a delivery's objects hold (weir-delivery's `Format`, without its encoding settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat<'a> {
    /// JSON lines from the `newline` or `flatten` transform.
    Ndjson,
    /// The `csv` transform's lines under its header; the columns are the transform's.
    Csv,
    /// Parquet typed by these columns.
    Parquet {
        /// The declared columns, in order.
        columns: &'a [CsvColumn],
    },
}

/// The compression around a delivery's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectCompression {
    /// No extension.
    None,
    /// `.gz`.
    Gzip,
    /// `.zst`.
    Zstd,
    /// Snappy framing, `.snappy`.
    Snappy,
}

impl ObjectCompression {
    /// The extension weir appends to an object's key.
    fn extension(self) -> &'static str {
        match self {
            ObjectCompression::None => "",
            ObjectCompression::Gzip => ".gz",
            ObjectCompression::Zstd => ".zst",
            ObjectCompression::Snappy => ".snappy",
        }
    }
}

/// A delivery stream, as far as loading its objects is concerned. The caller has validated it (as
/// `weir up` does): the prefixes are Firehose-valid and the format goes with the transform.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryDefinition<'a> {
    /// The delivery stream's name (`[A-Za-z0-9_.-]{1,64}`).
    pub name: &'a str,
    /// Firehose's delivery stream version, the second part of every object name.
    pub version: u32,
    pub transform: &'a TransformSpec,
    pub format: ObjectFormat<'a>,
    pub compression: ObjectCompression,
    /// The S3 bucket the objects are in.
    pub bucket: &'a str,
    /// The key prefix inside the bucket before Firehose's (`[deliveries.s3] prefix`), possibly empty.
    pub bucket_prefix: &'a str,
    /// Firehose's `Prefix` and `ErrorOutputPrefix` as configured.
    pub prefix: Option<&'a str>,
    pub error_output_prefix: Option<&'a str>,
}

/// Where the objects go in Snowflake and which IAM role reads the bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The role the storage integration assumes; `None` writes a placeholder to replace.
    pub role_arn: Option<&'a str>,
    /// Qualify the schema objects with a database (needs `schema`) and a schema.
    pub database: Option<&'a str>,
    pub schema: Option<&'a str>,
}

/// What a [`Statement`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    StorageIntegration,
    FileFormat,
    Stage,
    Table,
    /// The `COPY INTO` the pipe runs, on its own (to load files by hand, or files that predate the pipe).
    Copy,
    Pipe,
}

impl StatementKind {
    /// A stable name, e.g. for JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::StorageIntegration => "storage_integration",
            StatementKind::FileFormat => "file_format",
            StatementKind::Stage => "stage",
            StatementKind::Table => "table",
            StatementKind::Copy => "copy",
            StatementKind::Pipe => "pipe",
        }
    }
}

/// One SQL statement (without its `;`) and the comment printed above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: StatementKind,
    /// The object's qualified, quoted name (the copy's is its table's).
    pub name: String,
    /// `--` lines explaining the statement.
    pub comment: String,
    pub sql: String,
}

/// The statements in the order they must run, and the setup steps outside SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadScript {
    pub statements: Vec<Statement>,
    /// `--` lines: the IAM trust policy and the S3 event notification wiring.
    pub epilogue: String,
    /// The stage's URL, `s3://bucket/prefix/`.
    pub location: String,
}

impl LoadScript {
    /// The whole script as one SQL text: the [`StatementKind::Copy`] statement commented out (the pipe
    /// runs it), every other statement ending in `;`.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        for s in &self.statements {
            out.push_str(&s.comment);
            if s.kind == StatementKind::Copy {
                for line in s.sql.lines() {
                    let _ = writeln!(out, "-- {line}");
                }
                out.push('\n');
            } else {
                let _ = writeln!(out, "{};\n", s.sql);
            }
        }
        out.push_str(&self.epilogue);
        out
    }

    /// The statement of `kind`.
    pub fn statement(&self, kind: StatementKind) -> Option<&Statement> {
        self.statements.iter().find(|s| s.kind == kind)
    }
}

/// A delivery Snowflake cannot load as configured, or a name it cannot take; the message says which
/// setting and what would work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SnowflakeError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, SnowflakeError> {
    Err(SnowflakeError(message.into()))
}

/// The column `RECORD` and the load metadata columns of an NDJSON delivery's table.
const NDJSON_COLUMNS: [(&str, &str, &str); 4] = [
    ("RECORD", "VARIANT", "$1"),
    ("FILE_NAME", "VARCHAR", "METADATA$FILENAME"),
    ("FILE_ROW_NUMBER", "NUMBER(38,0)", "METADATA$FILE_ROW_NUMBER"),
    ("LOADED_AT", "TIMESTAMP_LTZ", "METADATA$START_SCAN_TIME"),
];

const ROLE_PLACEHOLDER: &str = "arn:aws:iam::<account-id>:role/<role-name>";

/// Generates the statements that load `delivery`'s objects into `target`.
pub fn load_script(delivery: &DeliveryDefinition<'_>, target: &Target<'_>) -> Result<LoadScript, SnowflakeError> {
    let names = Names::new(delivery.name, target)?;
    let file_format = file_format_options(delivery)?;
    let columns = table_columns(delivery)?;
    let stage_path = stage_path(delivery)?;
    let location = format!("s3://{}/{stage_path}", delivery.bucket);
    let role_arn = match target.role_arn {
        Some(arn) => {
            check_role_arn(arn)?;
            arn
        }
        None => ROLE_PLACEHOLDER,
    };

    let mut statements = Vec::new();
    let role_note = if target.role_arn.is_none() {
        "-- Replace the role ARN (weir snowflake --role-arn) with the role you create below.\n"
    } else {
        ""
    };
    statements.push(Statement {
        kind: StatementKind::StorageIntegration,
        name: names.integration.clone(),
        comment: format!(
            "-- Lets Snowflake read {location} by assuming an IAM role (account-level: needs ACCOUNTADMIN or\n\
             -- CREATE INTEGRATION).\n{role_note}"
        ),
        sql: format!(
            "CREATE STORAGE INTEGRATION IF NOT EXISTS {}\n  TYPE = EXTERNAL_STAGE\n  STORAGE_PROVIDER = 'S3'\n  \
             ENABLED = TRUE\n  STORAGE_AWS_ROLE_ARN = {}\n  STORAGE_ALLOWED_LOCATIONS = ({})",
            names.integration,
            literal(role_arn),
            literal(&location)
        ),
    });
    statements.push(Statement {
        kind: StatementKind::FileFormat,
        name: names.file_format.clone(),
        comment: format!(
            "-- Reads the objects exactly as weir writes them ({}).\n",
            format_summary(delivery)
        ),
        sql: format!(
            "CREATE FILE FORMAT IF NOT EXISTS {}\n  {}",
            names.file_format,
            file_format.join("\n  ")
        ),
    });
    statements.push(Statement {
        kind: StatementKind::Stage,
        name: names.stage.clone(),
        comment: "-- The delivery's objects, through the integration.\n".to_owned(),
        sql: format!(
            "CREATE STAGE IF NOT EXISTS {}\n  URL = {}\n  STORAGE_INTEGRATION = {}",
            names.stage,
            literal(&location),
            names.integration
        ),
    });
    let column_lines: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.ident,
                c.sql_type,
                if c.required { " NOT NULL" } else { "" }
            )
        })
        .collect();
    statements.push(Statement {
        kind: StatementKind::Table,
        name: names.table.clone(),
        comment: match delivery.format {
            ObjectFormat::Ndjson => {
                "-- One row per record: the record as VARIANT, and where and when it was loaded from.\n"
            }
            _ => "-- One column per declared column; required columns are NOT NULL.\n",
        }
        .to_owned(),
        sql: format!(
            "CREATE TABLE IF NOT EXISTS {} (\n  {}\n)",
            names.table,
            column_lines.join(",\n  ")
        ),
    });
    let copy = copy_statement(delivery, &names, &columns);
    statements.push(Statement {
        kind: StatementKind::Copy,
        name: names.table.clone(),
        comment: "-- The pipe's COPY on its own: run it to load files by hand (the pipe runs it for every new\n\
                  -- object).\n"
            .to_owned(),
        sql: copy.clone(),
    });
    statements.push(Statement {
        kind: StatementKind::Pipe,
        name: names.pipe.clone(),
        comment: "-- Loads every new object within about a minute of the S3 event (wiring below). Load history\n\
                  -- keeps a file from loading twice (14 days); ALTER PIPE … REFRESH loads files staged in the\n\
                  -- last 7 days that it has not seen.\n"
            .to_owned(),
        sql: format!(
            "CREATE PIPE IF NOT EXISTS {}\n  AUTO_INGEST = TRUE\n  COMMENT = {}\n  AS\n{copy}",
            names.pipe,
            literal(&format!("weir delivery stream {}", delivery.name))
        ),
    });
    let epilogue = epilogue(delivery, &names, &location, &stage_path);
    Ok(LoadScript {
        statements,
        epilogue,
        location,
    })
}

/// The objects' quoted, qualified names.
struct Names {
    integration: String,
    file_format: String,
    stage: String,
    table: String,
    pipe: String,
    /// The pipe's name inside a string literal, for `SYSTEM$PIPE_STATUS`.
    pipe_literal: String,
}

impl Names {
    fn new(delivery: &str, target: &Target<'_>) -> Result<Names, SnowflakeError> {
        // Delivery names are [A-Za-z0-9_.-]; `.` and `-` are not identifier characters.
        let mut base: String = delivery
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            base.insert_str(0, "WEIR_");
        }
        let qualifier = match (target.database, target.schema) {
            (Some(db), Some(schema)) => format!("{}.{}.", ident(db, "database")?, ident(schema, "schema")?),
            (None, Some(schema)) => format!("{}.", ident(schema, "schema")?),
            (Some(_), None) => return fail("a database needs a schema too (--database DB --schema SCHEMA)"),
            (None, None) => String::new(),
        };
        let pipe = format!("{qualifier}\"{base}_PIPE\"");
        Ok(Names {
            // Integrations are account-level objects, shared by every database: named for weir.
            integration: format!("\"WEIR_{base}_S3\""),
            file_format: format!("{qualifier}\"{base}_FORMAT\""),
            stage: format!("{qualifier}\"{base}_STAGE\""),
            table: format!("{qualifier}\"{base}\""),
            pipe_literal: literal(&pipe),
            pipe,
        })
    }
}

/// A double-quoted identifier: a plain identifier in upper case (what it means unquoted), anything else
/// as spelt, `"` doubled. `what` names it in errors.
fn ident(name: &str, what: &str) -> Result<String, SnowflakeError> {
    if name.is_empty() || name.chars().count() > 255 {
        return fail(format!(
            "{what} {name:?}: a Snowflake identifier has 1 to 255 characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return fail(format!(
            "{what} {name:?}: a Snowflake identifier has no control characters"
        ));
    }
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    Ok(if plain {
        format!("\"{}\"", name.to_ascii_uppercase())
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    })
}

/// A single-quoted string literal. Backslashes are escapes in Snowflake's literals, so they are doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn check_role_arn(arn: &str) -> Result<(), SnowflakeError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))));
    if ok {
        Ok(())
    } else {
        fail(format!(
            "role ARN {arn:?}: expected arn:aws:iam::<12-digit account>:role/<name>"
        ))
    }
}

/// The file format's options, one per line.
fn file_format_options(delivery: &DeliveryDefinition<'_>) -> Result<Vec<String>, SnowflakeError> {
    let compression = match (delivery.format, delivery.compression) {
        (ObjectFormat::Parquet { .. }, ObjectCompression::None) => "AUTO",
        (ObjectFormat::Parquet { .. }, other) => {
            return fail(format!(
                "delivery {:?}: Parquet objects are compressed inside (format.compression); the object's \
                 compression must be \"none\", not {other:?}",
                delivery.name
            ));
        }
        (_, ObjectCompression::None) => "NONE",
        (_, ObjectCompression::Gzip) => "GZIP",
        (_, ObjectCompression::Zstd) => "ZSTD",
        (_, ObjectCompression::Snappy) => {
            return fail(format!(
                "delivery {:?}: Snowflake cannot load Snappy-framed {} objects: its CSV and JSON file formats \
                 take COMPRESSION = AUTO | GZIP | BZ2 | BROTLI | ZSTD | DEFLATE | RAW_DEFLATE | NONE (Snappy only \
                 inside Avro, ORC and Parquet files); use compression = \"gzip\" or \"zstd\"",
                delivery.name,
                format_name(delivery.format)
            ));
        }
    };
    Ok(match delivery.format {
        ObjectFormat::Ndjson => vec![
            "TYPE = JSON".to_owned(),
            format!("COMPRESSION = {compression}"),
            // One JSON document per line; an outer array would be one record, not many.
            "STRIP_OUTER_ARRAY = FALSE".to_owned(),
        ],
        ObjectFormat::Csv => {
            let options =
                SNOWFLAKE_FILE_FORMAT.replacen("COMPRESSION = AUTO", &format!("COMPRESSION = {compression}"), 1);
            split_options(&options)
        }
        ObjectFormat::Parquet { .. } => vec![
            "TYPE = PARQUET".to_owned(),
            format!("COMPRESSION = {compression}"),
            // weir's timestamps are Parquet TIMESTAMP(isAdjustedToUTC) logical types.
            "USE_LOGICAL_TYPE = TRUE".to_owned(),
        ],
    })
}

/// `TYPE = CSV COMPRESSION = GZIP …` → one `KEY = value` per item (a key is an upper-case word
/// followed by `=`; values hold no spaces in [`SNOWFLAKE_FILE_FORMAT`] except inside `()`).
fn split_options(options: &str) -> Vec<String> {
    let tokens: Vec<&str> = options.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let is_key = tokens.get(i + 1) == Some(&"=")
            && !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        match out.last_mut() {
            Some(last) if !is_key => {
                last.push(' ');
                last.push_str(token);
            }
            _ => out.push((*token).to_owned()),
        }
    }
    out
}

fn format_name(format: ObjectFormat<'_>) -> &'static str {
    match format {
        ObjectFormat::Ndjson => "NDJSON",
        ObjectFormat::Csv => "CSV",
        ObjectFormat::Parquet { .. } => "Parquet",
    }
}

fn format_summary(delivery: &DeliveryDefinition<'_>) -> String {
    let compression = match delivery.compression {
        ObjectCompression::None => "uncompressed",
        ObjectCompression::Gzip => "gzip",
        ObjectCompression::Zstd => "zstd",
        ObjectCompression::Snappy => "snappy",
    };
    match delivery.format {
        ObjectFormat::Csv => format!("CSV with weir's quoting and one header line, {compression}"),
        ObjectFormat::Ndjson => format!("one JSON record per line, {compression}"),
        ObjectFormat::Parquet { .. } => "Parquet, compressed inside".to_owned(),
    }
}

/// A table column.
struct Column {
    ident: String,
    sql_type: &'static str,
    required: bool,
    /// How the COPY selects it.
    select: String,
}

fn table_columns(delivery: &DeliveryDefinition<'_>) -> Result<Vec<Column>, SnowflakeError> {
    let declared = match (delivery.format, delivery.transform) {
        (ObjectFormat::Ndjson, TransformSpec::Newline(_) | TransformSpec::Flatten(_)) => {
            return Ok(NDJSON_COLUMNS
                .iter()
                .map(|(name, sql_type, select)| Column {
                    ident: format!("\"{name}\""),
                    sql_type,
                    required: true,
                    select: (*select).to_owned(),
                })
                .collect());
        }
        (ObjectFormat::Csv, TransformSpec::Csv(spec)) => spec.columns.as_slice(),
        (ObjectFormat::Parquet { columns }, TransformSpec::Newline(_) | TransformSpec::Flatten(_)) => columns,
        (format, transform) => {
            return fail(format!(
                "delivery {:?}: {} objects do not go with the {} transform",
                delivery.name,
                format_name(format),
                transform.kind()
            ));
        }
    };
    let mut columns: Vec<Column> = Vec::with_capacity(declared.len());
    for (i, c) in declared.iter().enumerate() {
        let ident = ident(&c.name, &format!("column {}", i + 1))?;
        if let Some(other) = declared[..i].iter().zip(&columns).find(|(_, col)| col.ident == ident) {
            return fail(format!(
                "columns {:?} and {:?} are the same Snowflake column {ident} (unquoted names are upper-cased)",
                other.0.name, c.name
            ));
        }
        let position = i + 1;
        columns.push(Column {
            ident,
            sql_type: snowflake_type(c.kind),
            required: c.required,
            select: match c.kind {
                // CSV text is not JSON to Snowflake until parsed.
                ColumnType::Json => format!("PARSE_JSON(${position})"),
                _ => format!("${position}"),
            },
        });
    }
    Ok(columns)
}

/// The Snowflake type of a declared column.
pub fn snowflake_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String => "VARCHAR",
        ColumnType::Integer => "NUMBER(38,0)",
        ColumnType::Float => "FLOAT",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Timestamp => "TIMESTAMP_TZ",
        ColumnType::Json => "VARIANT",
    }
}

/// The `COPY INTO` the pipe runs.
fn copy_statement(delivery: &DeliveryDefinition<'_>, names: &Names, columns: &[Column]) -> String {
    let idents: Vec<&str> = columns.iter().map(|c| c.ident.as_str()).collect();
    let pattern = object_pattern(delivery);
    let options = format!(
        "  PATTERN = {}\n  FILE_FORMAT = (FORMAT_NAME = {})\n",
        literal(&pattern),
        literal(&names.file_format)
    );
    match delivery.format {
        ObjectFormat::Parquet { .. } => format!(
            "COPY INTO {}\n  FROM @{}\n{options}  MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE\n  ON_ERROR = SKIP_FILE",
            names.table, names.stage
        ),
        // Plain positional load when no column needs a function: it keeps ERROR_ON_COLUMN_COUNT_MISMATCH,
        // which Snowflake ignores in a COPY with a SELECT.
        ObjectFormat::Csv if columns.iter().all(|c| c.select.starts_with('$')) => format!(
            "COPY INTO {} ({})\n  FROM @{}\n{options}  ON_ERROR = SKIP_FILE",
            names.table,
            idents.join(", "),
            names.stage
        ),
        _ => {
            let selects: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
            format!(
                "COPY INTO {} ({})\n  FROM (SELECT {} FROM @{})\n{options}  ON_ERROR = SKIP_FILE",
                names.table,
                idents.join(", "),
                selects.join(", "),
                names.stage
            )
        }
    }
}

/// A regular expression for this delivery's object names below the stage:
/// `<name>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`. Snowpipe matches it against the path
/// after the stage's; `(.*/)?` makes it the whole last segment either way.
fn object_pattern(delivery: &DeliveryDefinition<'_>) -> String {
    // `[.]` rather than `\.`: no escapes to double inside the literal.
    let name = delivery.name.replace('.', "[.]");
    let extension = match delivery.format {
        ObjectFormat::Parquet { .. } => ".parquet",
        _ => delivery.compression.extension(),
    }
    .replace('.', "[.]");
    format!(
        "(.*/)?{name}-{}-[0-9]{{4}}(-[0-9]{{2}}){{5}}-[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}{extension}",
        delivery.version
    )
}

/// The literal head of a Firehose prefix, up to the last `/` before its first expression.
fn literal_head(prefix: &str) -> &str {
    let literal = prefix.find("!{").map_or(prefix, |i| &prefix[..i]);
    literal.rfind('/').map_or("", |i| &literal[..=i])
}

/// The stage's path inside the bucket (`a/b/` or empty), refusing a stage that would also hold
/// uncompressed error output.
fn stage_path(delivery: &DeliveryDefinition<'_>) -> Result<String, SnowflakeError> {
    let bucket_ok = (3..=63).contains(&delivery.bucket.len())
        && delivery
            .bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return fail(format!("bucket {:?}: use 3 to 63 of a-z 0-9 . -", delivery.bucket));
    }
    let data = literal_head(delivery.prefix.unwrap_or(""));
    // Without an ErrorOutputPrefix, errors go to `<prefix><error-output-type>/…`.
    let errors = match delivery.error_output_prefix.filter(|p| !p.is_empty()) {
        Some(prefix) => literal_head(prefix),
        None => data,
    };
    let extension = match delivery.format {
        ObjectFormat::Parquet { .. } => ".parquet",
        _ => delivery.compression.extension(),
    };
    if extension.is_empty() && (errors.starts_with(data) || data.starts_with(errors)) {
        return fail(format!(
            "delivery {:?}: its uncompressed objects and its error output (named alike) may share the stage's \
             path {data:?}, and Snowpipe would load error documents as records; give the delivery its own \
             literal prefix (prefix = \"{}/\", error_output_prefix = \"errors/!{{firehose:error-output-type}}/\") \
             or compress its objects",
            delivery.name, delivery.name
        ));
    }
    let mut path = String::new();
    for segment in delivery.bucket_prefix.split('/').filter(|s| !s.is_empty()) {
        path.push_str(segment);
        path.push('/');
    }
    path.push_str(data);
    if path.contains(['\'', '\\']) || path.chars().any(char::is_control) {
        return fail(format!(
            "prefix {path:?}: quotes, backslashes and control characters cannot be staged"
        ));
    }
    Ok(path)
}

/// The setup outside SQL: the IAM role's trust policy and the S3 event notification.
fn epilogue(delivery: &DeliveryDefinition<'_>, names: &Names, location: &str, stage_path: &str) -> String {
    let suffix = match delivery.format {
        ObjectFormat::Parquet { .. } => ".parquet",
        _ => delivery.compression.extension(),
    };
    let filter = if suffix.is_empty() {
        format!("prefix {stage_path:?}")
    } else {
        format!("prefix {stage_path:?} and suffix {suffix:?}")
    };
    format!(
        "-- Then, outside Snowflake (docs/snowflake.md walks through it):\n\
         -- 1. DESC INTEGRATION {integration};\n\
         --    gives STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID. Create the IAM role of\n\
         --    STORAGE_AWS_ROLE_ARN trusting that user (sts:AssumeRole, condition sts:ExternalId = the external\n\
         --    id), allowed s3:GetObject and s3:GetObjectVersion on {location}* and s3:ListBucket on the bucket.\n\
         -- 2. SHOW PIPES LIKE '{pipe_like}';  (or DESC PIPE {pipe};)\n\
         --    gives notification_channel, an SQS queue ARN. Add an S3 event notification on bucket {bucket}:\n\
         --    events s3:ObjectCreated:*, {filter}, destination that SQS queue.\n\
         -- 3. ALTER PIPE {pipe} REFRESH;  loads objects written before the notification existed (7 days).\n\
         -- 4. SELECT SYSTEM$PIPE_STATUS({pipe_literal});  shows executionState RUNNING and pendingFileCount.\n",
        integration = names.integration,
        pipe = names.pipe,
        pipe_like = names.pipe.rsplit('.').next().unwrap_or(&names.pipe).trim_matches('"'),
        pipe_literal = names.pipe_literal,
        bucket = delivery.bucket,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::spec::CsvSpec;

    fn csv_columns() -> Vec<CsvColumn> {
        let column = |name: &str, kind, required| CsvColumn {
            name: name.to_owned(),
            pointer: None,
            kind,
            required,
        };
        vec![
            column("user_id", ColumnType::Integer, true),
            column("event", ColumnType::String, true),
            column("amount", ColumnType::Float, false),
            column("ok", ColumnType::Boolean, false),
            column("arrived", ColumnType::Timestamp, true),
        ]
    }

    fn definition<'a>(
        transform: &'a TransformSpec,
        format: ObjectFormat<'a>,
        compression: ObjectCompression,
    ) -> DeliveryDefinition<'a> {
        DeliveryDefinition {
            name: "events-csv",
            version: 1,
            transform,
            format,
            compression,
            bucket: "my-bucket",
            bucket_prefix: "weir",
            prefix: Some("csv/!{timestamp:yyyy/MM/dd}/"),
            error_output_prefix: Some("csv-errors/!{firehose:error-output-type}/"),
        }
    }

    const TARGET: Target<'static> = Target {
        role_arn: Some("arn:aws:iam::123456789012:role/weir-snowflake"),
        database: Some("analytics"),
        schema: Some("raw"),
    };

    #[test]
    fn csv_script_is_golden() {
        let transform = TransformSpec::Csv(CsvSpec {
            columns: csv_columns(),
            fields: Default::default(),
        });
        let def = definition(&transform, ObjectFormat::Csv, ObjectCompression::Zstd);
        let script = load_script(&def, &TARGET).expect("a valid delivery");
        let expected = r#"-- Lets Snowflake read s3://my-bucket/weir/csv/ by assuming an IAM role (account-level: needs ACCOUNTADMIN or
-- CREATE INTEGRATION).
CREATE STORAGE INTEGRATION IF NOT EXISTS "WEIR_EVENTS_CSV_S3"
  TYPE = EXTERNAL_STAGE
  STORAGE_PROVIDER = 'S3'
  ENABLED = TRUE
  STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/weir-snowflake'
  STORAGE_ALLOWED_LOCATIONS = ('s3://my-bucket/weir/csv/');

-- Reads the objects exactly as weir writes them (CSV with weir's quoting and one header line, zstd).
CREATE FILE FORMAT IF NOT EXISTS "ANALYTICS"."RAW"."EVENTS_CSV_FORMAT"
  TYPE = CSV
  COMPRESSION = ZSTD
  FIELD_DELIMITER = ','
  RECORD_DELIMITER = '\n'
  MULTI_LINE = TRUE
  SKIP_HEADER = 1
  PARSE_HEADER = FALSE
  SKIP_BLANK_LINES = FALSE
  FIELD_OPTIONALLY_ENCLOSED_BY = '"'
  ESCAPE = NONE
  ESCAPE_UNENCLOSED_FIELD = NONE
  EMPTY_FIELD_AS_NULL = TRUE
  NULL_IF = ()
  TRIM_SPACE = FALSE
  ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE
  REPLACE_INVALID_CHARACTERS = FALSE
  SKIP_BYTE_ORDER_MARK = TRUE
  ENCODING = 'UTF8'
  TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF9TZH:TZM';

-- The delivery's objects, through the integration.
CREATE STAGE IF NOT EXISTS "ANALYTICS"."RAW"."EVENTS_CSV_STAGE"
  URL = 's3://my-bucket/weir/csv/'
  STORAGE_INTEGRATION = "WEIR_EVENTS_CSV_S3";

-- One column per declared column; required columns are NOT NULL.
CREATE TABLE IF NOT EXISTS "ANALYTICS"."RAW"."EVENTS_CSV" (
  "USER_ID" NUMBER(38,0) NOT NULL,
  "EVENT" VARCHAR NOT NULL,
  "AMOUNT" FLOAT,
  "OK" BOOLEAN,
  "ARRIVED" TIMESTAMP_TZ NOT NULL
);

-- The pipe's COPY on its own: run it to load files by hand (the pipe runs it for every new
-- object).
-- COPY INTO "ANALYTICS"."RAW"."EVENTS_CSV" ("USER_ID", "EVENT", "AMOUNT", "OK", "ARRIVED")
--   FROM @"ANALYTICS"."RAW"."EVENTS_CSV_STAGE"
--   PATTERN = '(.*/)?events-csv-1-[0-9]{4}(-[0-9]{2}){5}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}[.]zst'
--   FILE_FORMAT = (FORMAT_NAME = '"ANALYTICS"."RAW"."EVENTS_CSV_FORMAT"')
--   ON_ERROR = SKIP_FILE

-- Loads every new object within about a minute of the S3 event (wiring below). Load history
-- keeps a file from loading twice (14 days); ALTER PIPE … REFRESH loads files staged in the
-- last 7 days that it has not seen.
CREATE PIPE IF NOT EXISTS "ANALYTICS"."RAW"."EVENTS_CSV_PIPE"
  AUTO_INGEST = TRUE
  COMMENT = 'weir delivery stream events-csv'
  AS
COPY INTO "ANALYTICS"."RAW"."EVENTS_CSV" ("USER_ID", "EVENT", "AMOUNT", "OK", "ARRIVED")
  FROM @"ANALYTICS"."RAW"."EVENTS_CSV_STAGE"
  PATTERN = '(.*/)?events-csv-1-[0-9]{4}(-[0-9]{2}){5}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}[.]zst'
  FILE_FORMAT = (FORMAT_NAME = '"ANALYTICS"."RAW"."EVENTS_CSV_FORMAT"')
  ON_ERROR = SKIP_FILE;

-- Then, outside Snowflake (docs/snowflake.md walks through it):
-- 1. DESC INTEGRATION "WEIR_EVENTS_CSV_S3";
--    gives STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID. Create the IAM role of
--    STORAGE_AWS_ROLE_ARN trusting that user (sts:AssumeRole, condition sts:ExternalId = the external
--    id), allowed s3:GetObject and s3:GetObjectVersion on s3://my-bucket/weir/csv/* and s3:ListBucket on the bucket.
-- 2. SHOW PIPES LIKE 'EVENTS_CSV_PIPE';  (or DESC PIPE "ANALYTICS"."RAW"."EVENTS_CSV_PIPE";)
--    gives notification_channel, an SQS queue ARN. Add an S3 event notification on bucket my-bucket:
--    events s3:ObjectCreated:*, prefix "weir/csv/" and suffix ".zst", destination that SQS queue.
-- 3. ALTER PIPE "ANALYTICS"."RAW"."EVENTS_CSV_PIPE" REFRESH;  loads objects written before the notification existed (7 days).
-- 4. SELECT SYSTEM$PIPE_STATUS('"ANALYTICS"."RAW"."EVENTS_CSV_PIPE"');  shows executionState RUNNING and pendingFileCount.
"#;
        assert_eq!(script.to_sql(), expected);
    }

    #[test]
    fn ndjson_copy_loads_the_record_and_its_metadata() {
        let transform = TransformSpec::default();
        let mut def = definition(&transform, ObjectFormat::Ndjson, ObjectCompression::Gzip);
        def.name = "events";
        def.bucket_prefix = "";
        def.prefix = Some("events/year=!{timestamp:yyyy}/");
        def.error_output_prefix = Some("errors/!{firehose:error-output-type}/");
        let target = Target {
            role_arn: None,
            database: None,
            schema: None,
        };
        let script = load_script(&def, &target).expect("a valid delivery");
        assert_eq!(script.location, "s3://my-bucket/events/");
        let format = &script.statement(StatementKind::FileFormat).expect("format").sql;
        assert_eq!(
            format,
            "CREATE FILE FORMAT IF NOT EXISTS \"EVENTS_FORMAT\"\n  TYPE = JSON\n  COMPRESSION = GZIP\n  STRIP_OUTER_ARRAY = FALSE"
        );
        let table = &script.statement(StatementKind::Table).expect("table").sql;
        assert_eq!(
            table,
            "CREATE TABLE IF NOT EXISTS \"EVENTS\" (\n  \"RECORD\" VARIANT NOT NULL,\n  \"FILE_NAME\" VARCHAR NOT NULL,\n  \
             \"FILE_ROW_NUMBER\" NUMBER(38,0) NOT NULL,\n  \"LOADED_AT\" TIMESTAMP_LTZ NOT NULL\n)"
        );
        let copy = &script.statement(StatementKind::Copy).expect("copy").sql;
        assert_eq!(
            copy,
            "COPY INTO \"EVENTS\" (\"RECORD\", \"FILE_NAME\", \"FILE_ROW_NUMBER\", \"LOADED_AT\")\n  \
             FROM (SELECT $1, METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, METADATA$START_SCAN_TIME FROM @\"EVENTS_STAGE\")\n  \
             PATTERN = '(.*/)?events-1-[0-9]{4}(-[0-9]{2}){5}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}[.]gz'\n  \
             FILE_FORMAT = (FORMAT_NAME = '\"EVENTS_FORMAT\"')\n  ON_ERROR = SKIP_FILE"
        );
        let integration = &script
            .statement(StatementKind::StorageIntegration)
            .expect("integration");
        assert!(
            integration
                .sql
                .contains(&format!("STORAGE_AWS_ROLE_ARN = '{ROLE_PLACEHOLDER}'"))
        );
        assert!(integration.comment.contains("Replace the role ARN"));
    }

    #[test]
    fn parquet_matches_columns_by_name() {
        let transform = TransformSpec::default();
        let columns = csv_columns();
        let def = definition(
            &transform,
            ObjectFormat::Parquet { columns: &columns },
            ObjectCompression::None,
        );
        let script = load_script(&def, &TARGET).expect("a valid delivery");
        let format = &script.statement(StatementKind::FileFormat).expect("format").sql;
        assert!(
            format.ends_with("TYPE = PARQUET\n  COMPRESSION = AUTO\n  USE_LOGICAL_TYPE = TRUE"),
            "{format}"
        );
        let copy = &script.statement(StatementKind::Copy).expect("copy").sql;
        assert_eq!(
            copy,
            "COPY INTO \"ANALYTICS\".\"RAW\".\"EVENTS_CSV\"\n  FROM @\"ANALYTICS\".\"RAW\".\"EVENTS_CSV_STAGE\"\n  \
             PATTERN = '(.*/)?events-csv-1-[0-9]{4}(-[0-9]{2}){5}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}[.]parquet'\n  \
             FILE_FORMAT = (FORMAT_NAME = '\"ANALYTICS\".\"RAW\".\"EVENTS_CSV_FORMAT\"')\n  \
             MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE\n  ON_ERROR = SKIP_FILE"
        );
    }

    #[test]
    fn csv_json_columns_are_parsed_in_a_select() {
        let mut columns = csv_columns();
        columns.push(CsvColumn {
            name: "Payload Data".to_owned(),
            pointer: None,
            kind: ColumnType::Json,
            required: false,
        });
        let transform = TransformSpec::Csv(CsvSpec {
            columns,
            fields: Default::default(),
        });
        let def = definition(&transform, ObjectFormat::Csv, ObjectCompression::Gzip);
        let script = load_script(&def, &TARGET).expect("a valid delivery");
        let copy = &script.statement(StatementKind::Copy).expect("copy").sql;
        assert!(
            copy.contains("(\"USER_ID\", \"EVENT\", \"AMOUNT\", \"OK\", \"ARRIVED\", \"Payload Data\")\n  FROM (SELECT $1, $2, $3, $4, $5, PARSE_JSON($6) FROM @"),
            "{copy}"
        );
        let table = &script.statement(StatementKind::Table).expect("table").sql;
        assert!(table.contains("\"Payload Data\" VARIANT\n"), "{table}");
    }

    #[test]
    fn unloadable_combinations_are_errors_naming_them() {
        let transform = TransformSpec::default();
        let def = definition(&transform, ObjectFormat::Ndjson, ObjectCompression::Snappy);
        let err = load_script(&def, &TARGET).expect_err("snappy").to_string();
        assert!(err.contains("Snappy-framed NDJSON"), "{err}");

        // Uncompressed, with the error output in the same tree (Firehose's default error prefix).
        let mut def = definition(&transform, ObjectFormat::Ndjson, ObjectCompression::None);
        def.prefix = None;
        def.error_output_prefix = None;
        let err = load_script(&def, &TARGET)
            .expect_err("errors under the stage")
            .to_string();
        assert!(err.contains("error output"), "{err}");
        // ... which compression or separate prefixes fix.
        def.compression = ObjectCompression::Gzip;
        assert!(load_script(&def, &TARGET).is_ok());
        def.compression = ObjectCompression::None;
        def.prefix = Some("data/");
        def.error_output_prefix = Some("errors/!{firehose:error-output-type}/");
        assert!(load_script(&def, &TARGET).is_ok());

        let def = definition(&transform, ObjectFormat::Csv, ObjectCompression::Gzip);
        let err = load_script(&def, &TARGET)
            .expect_err("csv needs the csv transform")
            .to_string();
        assert!(
            err.contains("CSV objects do not go with the newline transform"),
            "{err}"
        );

        let csv = TransformSpec::Csv(CsvSpec {
            columns: vec![
                CsvColumn {
                    name: "id".into(),
                    pointer: None,
                    kind: ColumnType::Integer,
                    required: true,
                },
                CsvColumn {
                    name: "ID".into(),
                    pointer: None,
                    kind: ColumnType::Integer,
                    required: true,
                },
            ],
            fields: Default::default(),
        });
        let def = definition(&csv, ObjectFormat::Csv, ObjectCompression::Gzip);
        let err = load_script(&def, &TARGET).expect_err("same column").to_string();
        assert!(err.contains("same Snowflake column \"ID\""), "{err}");

        let bad_role = Target {
            role_arn: Some("arn:aws:iam::123:user/x"),
            ..TARGET
        };
        let def = definition(&transform, ObjectFormat::Ndjson, ObjectCompression::Gzip);
        assert!(
            load_script(&def, &bad_role)
                .expect_err("bad arn")
                .to_string()
                .contains("role ARN")
        );
        let no_schema = Target { schema: None, ..TARGET };
        assert!(load_script(&def, &no_schema).is_err());
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("user_id", "c").expect("plain"), "\"USER_ID\"");
        assert_eq!(ident("Mixed Case", "c").expect("spaced"), "\"Mixed Case\"");
        assert_eq!(ident("say \"hi\"", "c").expect("quotes"), "\"say \"\"hi\"\"\"");
        assert_eq!(ident("1st", "c").expect("digit first"), "\"1st\"");
        assert!(ident("", "c").is_err());
        assert!(ident("a\nb", "c").is_err());
        assert_eq!(literal("it's a\\b"), "'it\\'s a\\\\b'");
        let names = Names::new("1.events", &Target::default()).expect("names");
        assert_eq!(names.table, "\"WEIR_1_EVENTS\"");
        assert_eq!(names.pipe_literal, "'\"WEIR_1_EVENTS_PIPE\"'");
    }

    #[test]
    fn the_csv_file_format_constant_splits_into_its_options() {
        // The CSV format is weir's constant with the compression made explicit.
        assert!(SNOWFLAKE_FILE_FORMAT.contains("COMPRESSION = AUTO "));
        let options = split_options(SNOWFLAKE_FILE_FORMAT);
        assert_eq!(options.join(" "), SNOWFLAKE_FILE_FORMAT);
        assert!(options.iter().all(|o| o.contains(" = ")), "{options:?}");
        assert_eq!(literal_head("csv/event=!{partitionKeyFromQuery:event}/"), "csv/");
        assert_eq!(literal_head("legacy"), "");
        assert_eq!(literal_head("a/b/"), "a/b/");
    }
}
