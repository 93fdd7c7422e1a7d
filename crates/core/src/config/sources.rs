//! The layers configuration is read from, lowest first.

use std::collections::HashMap;
use std::path::Path;

use super::{ConfigError, LoadOptions, Schema};

/// Lowest first: the order layers are applied in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    DotEnv,
    Env,
    Flag,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "floodgate.toml",
            Source::DotEnv => ".env",
            Source::Env => "environment",
            Source::Flag => "flag",
        }
    }
}

/// One layer's raw values keyed by the name it used (canonical or alias).
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: Source,
    pub values: HashMap<String, String>,
}

impl Layer {
    pub fn new(source: Source, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Layer {
            source,
            values: pairs.into_iter().collect(),
        }
    }

    /// A layer of literal name/value pairs (flags, tests).
    pub fn of(source: Source, pairs: &[(&str, &str)]) -> Self {
        Self::new(
            source,
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }
}

/// Reads the file, `.env`, environment and flag layers, lowest first.
pub fn read_layers(
    schema: &Schema,
    opts: &LoadOptions,
    env: impl Iterator<Item = (String, String)>,
) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    let toml_path = opts.config_file.clone().or_else(|| {
        let p = Path::new("floodgate.toml");
        p.exists().then(|| p.to_path_buf())
    });
    if let Some(p) = toml_path {
        layers.push(Layer::new(Source::File, read_toml(schema, &p)?));
    }
    let env_path = opts.env_file.clone().or_else(|| {
        let p = Path::new(".env");
        p.exists().then(|| p.to_path_buf())
    });
    if let Some(p) = env_path {
        layers.push(Layer::new(
            Source::DotEnv,
            read_dotenv(&p, |k| read_name(schema, k))?,
        ));
    }
    layers.push(Layer::new(
        Source::Env,
        env.filter(|(k, _)| read_name(schema, k)),
    ));
    let mut flags = Vec::new();
    for (k, v) in &opts.flags {
        if schema.find(k).is_none() {
            return Err(ConfigError::Unknown(k.clone()));
        }
        flags.push((k.clone(), v.clone()));
    }
    layers.push(Layer::new(Source::Flag, flags));
    Ok(layers)
}

/// A setting's name or a seed name handled in `seed_names`; other names are left alone.
fn read_name(schema: &Schema, k: &str) -> bool {
    schema.knows(k)
}

fn file_error(path: &Path, reason: impl ToString) -> ConfigError {
    ConfigError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// `.env` lines named by `keep`; others are ignored (a seed's `.env` carries settings for
/// other tools).
pub fn read_dotenv(
    path: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let iter = dotenvy::from_path_iter(path).map_err(|e| file_error(path, e))?;
    let mut out = Vec::new();
    for item in iter {
        let (k, v) = item.map_err(|e| file_error(path, e))?;
        if keep(&k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// `floodgate.toml`: flat keys, either the setting's name (`REDIS_URL`) or its lower-case
/// short form (`redis_url`, `listen` for `FLOODGATE_LISTEN`). Unknown keys are an error,
/// since a typo in our own file should not pass silently.
pub fn read_toml(schema: &Schema, path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let table: toml::Table = text.parse().map_err(|e| file_error(path, e))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let upper = key.to_ascii_uppercase();
        let name = [upper.clone(), format!("FLOODGATE_{upper}")]
            .into_iter()
            .find(|n| schema.find(n).is_some())
            .ok_or_else(|| ConfigError::Unknown(format!("{key} (in {})", path.display())))?;
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::invalid(
                    &name,
                    format!("expected a plain value, got {other}"),
                ))
            }
        };
        out.push((name, value));
    }
    Ok(out)
}
