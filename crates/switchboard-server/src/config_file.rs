//! Reading a TOML config file so that every mistake in it is reported at once, each with the
//! file, the line and the dotted key, and an unknown key with the keys valid beside it.
//!
//! serde stops at the first error and forgets where in the text a value came from. So each
//! part is deserialized through `serde_path_to_error` (which names the key), the key is looked
//! up in a span-keeping parse of the same text (which gives its line), and the offending key
//! is removed and the part deserialized again, until it passes or no key can be blamed.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml_edit::{ImDocument, Item, Table, TableLike, Value};

/// Stop collecting errors after this many; a file this broken is probably not a config file.
const MAX_ERRORS: usize = 50;

/// One mistake in a config file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; `None` when the mistake has no place in the text (e.g. an empty value list).
    pub line: Option<usize>,
    /// Dotted path of the key, `namespace[0].on_message`; empty for a syntax error.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every mistake found in one file; displayed one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} error{} in the config file (every key and its default: `switchboard config default`):",
            if count == 1 { "" } else { "s" }
        )?;
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The text of one config file, parsed, with the spans needed to point at a line.
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    spans: ImDocument<String>,
    table: toml::Table,
}

impl ConfigFile {
    /// Read and parse `path`; a syntax error is reported with its line.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {err}"),
            }])
        })?;
        Self::parse(path, text)
    }

    /// Parse `text` as the contents of `path`.
    pub fn parse(path: &Path, text: String) -> Result<ConfigFile, ConfigErrors> {
        let syntax_error = |span: Option<std::ops::Range<usize>>, message: &str| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: span.map(|span| line_of(&text, span.start)),
                key: String::new(),
                message: one_line(message),
            }])
        };
        let spans = ImDocument::parse(text.clone())
            .map_err(|err| syntax_error(err.span(), err.message()))?;
        let table = text
            .parse::<toml::Table>()
            .map_err(|err| syntax_error(err.span(), err.message()))?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
            spans,
            table,
        })
    }

    /// Take the top-level `key` out of the file (for keys the binary reads itself) and
    /// deserialize it; `None` when absent or wrong (the errors are added to `errors`).
    pub fn take<T: DeserializeOwned>(
        &mut self,
        key: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let value = self.table.remove(key)?;
        let prefix = Segment::Map {
            key: key.to_string(),
        };
        self.deserialize(Some(prefix), value, errors)
    }

    /// Deserialize what is left of the file as `T`; `None` if anything in it is wrong (the
    /// errors are added to `errors`).
    pub fn rest<T: DeserializeOwned>(&mut self, errors: &mut Vec<ConfigError>) -> Option<T> {
        let table = std::mem::take(&mut self.table);
        self.deserialize(None, toml::Value::Table(table), errors)
    }

    /// Deserialize `value` (found at `prefix` in the file), recording each error and dropping
    /// the key it blames, until it passes (`Some` only if nothing was dropped) or no key can
    /// be blamed.
    fn deserialize<T: DeserializeOwned>(
        &self,
        prefix: Option<Segment>,
        mut value: toml::Value,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let before = errors.len();
        loop {
            let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(parsed) => return (errors.len() == before).then_some(parsed),
                Err(err) => err,
            };
            let relative: Vec<Segment> = err.path().iter().cloned().collect();
            let path: Vec<Segment> = prefix.iter().cloned().chain(relative.clone()).collect();
            errors.push(ConfigError {
                file: self.path.clone(),
                line: self.line_of_path(&path),
                key: dotted(&path),
                message: plain_words(err.inner().message()),
            });
            if errors.len() >= MAX_ERRORS || !remove(&mut value, &relative) {
                return None;
            }
        }
    }

    /// The line of the deepest part of `path` found in the text.
    fn line_of_path(&self, path: &[Segment]) -> Option<usize> {
        let mut node = Node::Item(self.spans.as_item());
        let mut start = None;
        for segment in path {
            let (child, span) = match segment {
                Segment::Map { key } => node.entry(key),
                Segment::Seq { index } => node.element(*index),
                Segment::Enum { .. } | Segment::Unknown => None,
            }
            .unwrap_or((node, None));
            start = span.map(|span| span.start).or(start);
            node = child;
        }
        start.map(|offset| line_of(&self.text, offset))
    }
}

/// Where in the span-keeping parse a path has led.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

type Step<'a> = Option<(Node<'a>, Option<std::ops::Range<usize>>)>;

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    fn entry(self, key: &str) -> Step<'a> {
        let (key, item) = self.table_like()?.get_key_value(key)?;
        Some((Node::Item(item), key.span()))
    }

    fn element(self, index: usize) -> Step<'a> {
        let array = match self {
            Node::Item(Item::ArrayOfTables(tables)) => {
                let table = tables.get(index)?;
                return Some((Node::Table(table), table.span()));
            }
            Node::Item(Item::Value(value)) | Node::Value(value) => value.as_array()?,
            _ => return None,
        };
        let value = array.get(index)?;
        Some((Node::Value(value), value.span()))
    }
}

/// `limits.max_frame`, `namespace[0].name`.
fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Drop the key `path` ends at, so deserializing again finds the next mistake. Only a key of
/// a table can go; dropping an array element would shift the indices of later ones.
fn remove(value: &mut toml::Value, path: &[Segment]) -> bool {
    match path {
        [Segment::Map { key }] => value
            .as_table_mut()
            .is_some_and(|table| table.remove(key.as_str()).is_some()),
        [Segment::Map { key }, rest @ ..] => value
            .get_mut(key.as_str())
            .is_some_and(|child| remove(child, rest)),
        [Segment::Seq { index }, rest @ ..] if !rest.is_empty() => value
            .get_mut(*index)
            .is_some_and(|child| remove(child, rest)),
        _ => false,
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in the words of a config file.
fn plain_words(message: &str) -> String {
    let message = one_line(message);
    match message.strip_prefix("unknown field ") {
        Some(rest) => format!(
            "unknown key {}",
            rest.replacen(", expected one of ", "; valid keys here: ", 1)
                .replacen(", expected ", "; valid keys here: ", 1)
        ),
        None => message,
    }
}

/// toml's messages span lines; a report has one line per mistake.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}
