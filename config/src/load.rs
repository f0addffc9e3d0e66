//! Reading a component's TOML file into its typed struct, with errors that say where.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A configuration file that could not be used. The message names the file, the line and
/// column, the key, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}{message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// "key `port`: " when the key is known, else empty.
        key: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Semantic { path: PathBuf, message: String },
}

/// Reads and parses `path` into `T`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// The configuration in `path`, or `T`'s defaults when no file is given (a command line
/// without `--config`).
pub fn load_or_default<T: DeserializeOwned + Default>(
    path: Option<&Path>,
) -> Result<T, ConfigError> {
    match path {
        Some(p) => load(p),
        None => Ok(T::default()),
    }
}

/// Parses TOML `text` (said to come from `path`, for messages) into `T`.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let (line, column, key) = match e.span() {
            Some(span) => locate(text, span.start),
            None => (0, 0, String::new()),
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            key: if key.is_empty() {
                String::new()
            } else {
                format!("key `{key}`: ")
            },
            message: e.message().trim().to_string(),
        }
    })
}

/// Line and column (1-based) of byte `offset`, and the key written on that line, if any.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = offset - line_start + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = match line_text.split_once('=') {
        Some((k, _)) => k.trim().trim_matches('"').to_string(),
        None => String::new(),
    };
    (line, column, key)
}

#[cfg(test)]
mod tests {
    use crate::NodeConfig;
    use std::path::Path;

    #[test]
    fn errors_name_file_line_and_key() {
        let err = crate::parse::<NodeConfig>(
            "port = 6380\nmaxmemory = \"lots\"\n",
            Path::new("node.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("node.toml:2:"), "{err}");
        assert!(err.contains("key `maxmemory`"), "{err}");
        assert!(err.contains("invalid size"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = crate::parse::<NodeConfig>("prot = 1\n", Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `prot`"), "{err}");
    }

    #[test]
    fn wrong_type_names_expectation() {
        let err = crate::parse::<NodeConfig>("port = \"abc\"\n", Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `port`"), "{err}");
        assert!(err.contains("expected"), "{err}");
    }
}
