//! Which settings exist: core's table plus the tables of the services the binary registers
//! (`Schema::core().with::<floodgate_abacus::Settings>()…`), and each service's typed
//! settings, kept in [`Config`] by type (`cfg.settings::<floodgate_abacus::Settings>()`).

use std::any::Any;
use std::fmt;

use super::settings::{Setting, CORE, WORKERS};
use super::{sources, Config, ConfigError, Layer, LoadOptions, Resolved, Secret, Workers};

/// A service's settings: its rows of the settings table and the typed value parsed from
/// the resolved values. Name each row with a constant (`setting_names!`) and parse with it, so
/// a misspelled name does not compile; a name read but missing from `TABLE` is a
/// [`ConfigError::Unregistered`] at start-up.
pub trait ServiceSettings: Clone + fmt::Debug + Send + Sync + 'static {
    const TABLE: &'static [Setting];
    /// The name `FLOODGATE_WORKERS` gives the service's worker, when it has one.
    const WORKER: Option<&'static str> = None;
    /// The seed's settings this service has no use for, and why (logged at start-up).
    const IGNORED: &'static [(&'static str, &'static str)] = &[];

    fn parse(r: &Resolved) -> Result<Self, ConfigError>;

    /// Secrets this service needs and lacks; generated in zero-setup mode (see
    /// [`super::dev_secrets`]).
    fn missing_secrets(&self) -> Vec<DevSecret> {
        Vec::new()
    }

    /// Takes a secret named by [`Self::missing_secrets`] (generated or read back).
    fn set_secret(&mut self, _name: &str, _value: Secret) {}

    /// The settings with every value at its default (tests).
    fn defaults() -> Self {
        Schema::core()
            .with::<Self>()
            .defaults()
            .settings::<Self>()
            .clone()
    }
}

/// A secret a service can have generated in zero-setup mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevSecret {
    pub name: &'static str,
    /// Hex characters generated (a multiple of 32).
    pub len: usize,
}

/// Parses one service's section from the resolved values.
type ParseSection = fn(&Resolved) -> Result<Box<dyn Section>, ConfigError>;

/// Core's table and the registered services' tables, in order.
#[derive(Clone)]
pub struct Schema {
    tables: Vec<&'static [Setting]>,
    parsers: Vec<ParseSection>,
    /// The registered services' worker names (`FLOODGATE_WORKERS` may list only these).
    workers: Vec<&'static str>,
    /// Seed names read only to be logged as ignored: core's, then each service's.
    ignored: Vec<&'static [(&'static str, &'static str)]>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.settings().map(|s| s.name))
            .finish()
    }
}

impl Schema {
    /// Core's settings only.
    pub fn core() -> Schema {
        Schema {
            tables: vec![CORE],
            parsers: Vec::new(),
            workers: Vec::new(),
            ignored: vec![super::seed_names::IGNORED],
        }
    }

    /// Adds a service's table; its settings are parsed into the [`Config`] on load.
    ///
    /// # Panics
    /// When one of its names (or aliases) is already registered: two rows would fight over
    /// the same variable.
    pub fn with<S: ServiceSettings>(mut self) -> Schema {
        for row in S::TABLE {
            for name in std::iter::once(&row.name).chain(row.aliases) {
                assert!(
                    self.find(name).is_none(),
                    "setting {name} of {} is already registered",
                    std::any::type_name::<S>()
                );
            }
        }
        self.tables.push(S::TABLE);
        self.parsers.push(parse_section::<S>);
        self.workers.extend(S::WORKER);
        self.ignored.push(S::IGNORED);
        self
    }

    /// Every row, core's first, then each service's in registration order.
    pub fn settings(&self) -> impl Iterator<Item = &'static Setting> + '_ {
        self.tables.iter().flat_map(|t| t.iter())
    }

    /// The row `name` (canonical or alias) belongs to.
    pub fn find(&self, name: &str) -> Option<&'static Setting> {
        self.settings().find(|s| s.answers_to(name))
    }

    /// Reads the files and the process environment, then resolves and parses.
    pub fn load(&self, opts: &LoadOptions) -> Result<(Config, Resolved), ConfigError> {
        self.load_from(opts, std::env::vars())
    }

    /// [`Self::load`] with `env` standing in for the process environment (tests).
    pub fn load_from(
        &self,
        opts: &LoadOptions,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<(Config, Resolved), ConfigError> {
        let layers = sources::read_layers(self, opts, env)?;
        let resolved = self.resolve(&layers)?;
        let config = self.config(&resolved)?;
        Ok((config, resolved))
    }

    /// Merges the layers (see [`super::resolve`]).
    /// Seed names that are logged as ignored, with why: core's, then each service's.
    pub fn ignored(&self) -> impl Iterator<Item = &(&'static str, &'static str)> {
        self.ignored.iter().flat_map(|t| t.iter())
    }

    /// Whether a `.env` or file may hold `name`: a setting or alias, a seed name combined
    /// into one (`HOST`+`PORT`), or a seed name logged as ignored.
    pub fn knows(&self, name: &str) -> bool {
        self.find(name).is_some()
            || super::seed_names::COMBINED.contains(&name)
            || self.ignored().any(|(n, _)| *n == name)
    }

    pub fn resolve(&self, layers: &[Layer]) -> Result<Resolved, ConfigError> {
        super::resolve(self, layers)
    }

    /// Core's typed settings and every registered service's.
    pub fn config(&self, r: &Resolved) -> Result<Config, ConfigError> {
        let mut config = Config::from_resolved(r)?;
        if let Workers::Only(names) = &config.workers {
            if let Some(unknown) = names.iter().find(|n| !self.workers.contains(&n.as_str())) {
                return Err(ConfigError::invalid(
                    WORKERS,
                    format!(
                        "expected a list of {}; got {unknown:?}",
                        self.workers.join(", ")
                    ),
                ));
            }
        }
        for parse in &self.parsers {
            config.sections.0.push(parse(r)?);
        }
        Ok(config)
    }

    /// Defaults only (no files, no environment): for tests and embedded use.
    pub fn defaults(&self) -> Config {
        let resolved = self.resolve(&[]).unwrap_or_default();
        match self.config(&resolved) {
            Ok(c) => c,
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }

    /// `floodgate.toml`'s keys: a setting's name (`REDIS_URL`) or its lower-case short form
    /// (`redis_url`, `listen` for `FLOODGATE_LISTEN`).
    pub fn read_toml(&self, path: &std::path::Path) -> Result<Vec<(String, String)>, ConfigError> {
        sources::read_toml(self, path)
    }
}

fn parse_section<S: ServiceSettings>(r: &Resolved) -> Result<Box<dyn Section>, ConfigError> {
    Ok(Box::new(S::parse(r)?))
}

/// A service's typed settings with its type erased, so [`Config`] can hold any.
pub(crate) trait Section: Any + Send + Sync + fmt::Debug {
    fn clone_box(&self) -> Box<dyn Section>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn missing_secrets(&self) -> Vec<DevSecret>;
    fn set_secret(&mut self, name: &str, value: Secret);
}

impl<S: ServiceSettings> Section for S {
    fn clone_box(&self) -> Box<dyn Section> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn missing_secrets(&self) -> Vec<DevSecret> {
        ServiceSettings::missing_secrets(self)
    }
    fn set_secret(&mut self, name: &str, value: Secret) {
        ServiceSettings::set_secret(self, name, value)
    }
}

/// The registered services' settings, in registration order.
#[derive(Default)]
pub(crate) struct Sections(pub(crate) Vec<Box<dyn Section>>);

impl Clone for Sections {
    fn clone(&self) -> Self {
        Sections(self.0.iter().map(|s| s.clone_box()).collect())
    }
}

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl Sections {
    fn position<S: ServiceSettings>(&self) -> Option<usize> {
        self.0.iter().position(|s| s.as_any().is::<S>())
    }
}

impl Config {
    /// A service's settings, when its table was registered.
    pub fn try_settings<S: ServiceSettings>(&self) -> Option<&S> {
        let i = self.sections.position::<S>()?;
        self.sections.0[i].as_any().downcast_ref()
    }

    /// A service's settings.
    ///
    /// # Panics
    /// When the configuration was built without the service's table: the binary registers
    /// every service (`Schema::core().with::<S>()`), and a test sets or adds them with
    /// [`Config::settings_mut`].
    pub fn settings<S: ServiceSettings>(&self) -> &S {
        match self.try_settings::<S>() {
            Some(s) => s,
            None => panic!(
                "{} are not registered: build the configuration with Schema::core().with::<{0}>()",
                std::any::type_name::<S>()
            ),
        }
    }

    /// A service's settings to change (tests); added at their defaults when the
    /// configuration was built without them.
    pub fn settings_mut<S: ServiceSettings>(&mut self) -> &mut S {
        let i = match self.sections.position::<S>() {
            Some(i) => i,
            None => {
                self.sections.0.push(Box::new(S::defaults()));
                self.sections.0.len() - 1
            }
        };
        match self.sections.0[i].as_any_mut().downcast_mut() {
            Some(s) => s,
            None => unreachable!("the section at {i} is an {}", std::any::type_name::<S>()),
        }
    }

    /// This configuration with `settings` in place of the service's current ones.
    pub fn with_settings<S: ServiceSettings>(mut self, settings: S) -> Config {
        *self.settings_mut::<S>() = settings;
        self
    }

    /// Every registered service's missing secrets, in registration order.
    pub(crate) fn missing_service_secrets(&self) -> Vec<DevSecret> {
        self.sections
            .0
            .iter()
            .flat_map(|s| s.missing_secrets())
            .collect()
    }

    pub(crate) fn set_service_secret(&mut self, name: &str, value: &Secret) {
        for s in &mut self.sections.0 {
            s.set_secret(name, value.clone());
        }
    }
}
